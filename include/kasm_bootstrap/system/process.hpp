#pragma once
// Child processes: the one way kasm-bootstrap runs another program. Every child gets its
// own process group (so a deadline or SIGTERM can stop the whole tree), a parent-death
// signal (SIGKILL when we die, even by SIGKILL), stdin from /dev/null (so a prompt fails
// fast instead of hanging), and its stdout+stderr streamed line by line to a callback,
// as bytes (a line is never required to be text).

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kb::sys {

struct Command {
  std::vector<std::string> argv; // argv[0] is looked up in PATH when it has no '/'
  // Added to (or replacing in) our own environment, from which every KASM_BOOTSTRAP_*
  // variable is dropped: our configuration (and its secrets) never reaches a child.
  std::map<std::string, std::string> env_overrides;
  std::filesystem::path working_dir;                         // host path; empty = inherit
  std::chrono::milliseconds timeout{0};                      // 0 = no deadline
  std::chrono::milliseconds kill_grace{2000};                // SIGTERM -> SIGKILL delay at the deadline
  std::function<void(std::string_view line)> on_output_line; // merged stdout and stderr
  std::size_t tail_lines = 20;                               // kept for error messages
  // Host path where the child's process group is recorded while it runs ("PGID START\n",
  // START the leader's start time in clock ticks), removed once the group is gone; empty =
  // not recorded. A run that was SIGKILLed leaves it behind for end_recorded_group().
  std::filesystem::path group_record;
};

struct ProcessResult {
  int exit_code = -1;  // valid when term_signal == 0
  int term_signal = 0; // signal that ended the child, if any
  bool timed_out = false;
  bool cancelled = false;
  std::deque<std::string> tail; // last output lines

  bool success() const { return term_signal == 0 && exit_code == 0 && !timed_out && !cancelled; }
  // "exit status 3", "killed by signal 9 after the 600 s deadline", ...
  std::string describe_outcome() const;
};

class ProcessRunner {
public:
  virtual ~ProcessRunner() = default;
  // Runs to completion. Throws std::system_error when the program cannot be started.
  // `cancel`, when it becomes true, stops the child's process group like a deadline.
  virtual ProcessResult run(const Command& command, const std::atomic<bool>* cancel = nullptr);
};

// Ends the process group a Command::group_record names, when it is still running: the
// children of a run that was killed before it could stop them (SIGTERM, then SIGKILL
// after `grace`). Returns what it did, for the log; nullopt when there was nothing to end.
// The record is removed either way. Only for a record no live run owns (hold the run lock).
std::optional<std::string> end_recorded_group(const std::filesystem::path& record,
                                              std::chrono::milliseconds grace = std::chrono::seconds(5));

// argv as a shell-quoted line, secrets masked: for logs and dry-run output.
std::string describe_command(const std::vector<std::string>& argv);

// The start time of a process in clock ticks since boot (/proc/PID/stat field 22): with
// the pid, it names one process for good, where the pid alone may be reused. nullopt
// when there is no such process.
std::optional<unsigned long long> process_start_time(pid_t pid);

} // namespace kb::sys

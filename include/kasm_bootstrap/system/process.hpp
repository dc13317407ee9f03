#pragma once
// Child processes: the one way kasm-bootstrap runs another program. Every child gets its
// own process group (so a deadline or SIGTERM can stop the whole tree), stdin from
// /dev/null (so a prompt fails fast instead of hanging), and its stdout+stderr streamed
// line by line to a callback.

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kb::sys {

struct Command {
  std::vector<std::string> argv;                             // argv[0] is looked up in PATH when it has no '/'
  std::map<std::string, std::string> env_overrides;          // added to (or replacing in) our own environment
  std::filesystem::path working_dir;                         // host path; empty = inherit
  std::chrono::milliseconds timeout{0};                      // 0 = no deadline
  std::chrono::milliseconds kill_grace{2000};                // SIGTERM -> SIGKILL delay at the deadline
  std::function<void(std::string_view line)> on_output_line; // merged stdout and stderr
  std::size_t tail_lines = 20;                               // kept for error messages
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

// argv as a shell-quoted line, secrets masked: for logs and dry-run output.
std::string describe_command(const std::vector<std::string>& argv);

} // namespace kb::sys

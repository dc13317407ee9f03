#include "kasm_bootstrap/system/process.hpp"

#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/redactor.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>

extern char** environ; // NOLINT: POSIX

namespace kb::sys {
namespace {

using Clock = std::chrono::steady_clock;

std::string quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_of(" \t\n'\"\\$`!*?[]{}()<>|&;#~") == std::string::npos) return arg;
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::vector<std::string> build_environment(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string_view::npos && overrides.count(std::string(entry.substr(0, eq)))) continue;
    env.emplace_back(entry);
  }
  for (const auto& [k, v] : overrides)
    env.push_back(fmt::format("{}={}", k, v));
  return env;
}

std::vector<char*> c_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings)
    out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Owns a running child: if the runner unwinds early the whole group is killed and reaped.
class Child {
public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  pid_t pid() const { return pid_; }
  // Non-blocking; returns true and fills status when the child has exited.
  bool try_reap(int& status) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }
  void signal_group(int sig) const {
    if (pid_ > 0) ::kill(-pid_, sig);
  }

private:
  pid_t pid_;
};

} // namespace

std::string ProcessResult::describe_outcome() const {
  if (cancelled) return "stopped because the run was interrupted";
  if (timed_out) return "stopped at its deadline";
  if (term_signal != 0) {
    // sigdescr_np, unlike strsignal, returns a constant string: safe from any thread.
    const char* name = ::sigdescr_np(term_signal);
    return name ? fmt::format("killed by signal {}", name) : fmt::format("killed by signal {}", term_signal);
  }
  return "exit status " + std::to_string(exit_code);
}

std::string describe_command(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& a : argv) {
    if (!line.empty()) line += ' ';
    line += quote(a);
  }
  return scrub(line);
}

ProcessResult ProcessRunner::run(const Command& command, const std::atomic<bool>* cancel) {
  if (command.argv.empty()) throw std::invalid_argument("empty command");

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
  if (!command.working_dir.empty()) posix_spawn_file_actions_addchdir_np(&actions, command.working_dir.c_str());

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGTERM);
  sigaddset(&default_signals, SIGINT);
  sigaddset(&default_signals, SIGPIPE);
  sigaddset(&default_signals, SIGCHLD);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigdefault(&attr, &default_signals);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  auto argv_strings = command.argv;
  auto env_strings = build_environment(command.env_overrides);
  auto argv = c_array(argv_strings);
  auto envp = c_array(env_strings);

  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "cannot start " + command.argv[0]);
  write_end.reset();
  Child child(pid);

  ProcessResult result;
  std::string partial;
  auto emit = [&](std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (command.on_output_line) command.on_output_line(line);
    if (command.tail_lines > 0) {
      result.tail.push_back(scrub(line));
      if (result.tail.size() > command.tail_lines) result.tail.pop_front();
    }
  };

  const auto start = Clock::now();
  std::optional<Clock::time_point> kill_at;
  bool pipe_open = true;
  int status = 0;
  bool exited = false;
  for (;;) {
    if (!exited && child.try_reap(status)) exited = true;
    // Grandchildren may keep the pipe open after the child exits; stop once it is drained.
    if (exited && !pipe_open) break;

    const auto now = Clock::now();
    const bool want_stop =
        (cancel && cancel->load()) || (command.timeout.count() > 0 && now - start >= command.timeout);
    if (want_stop && !kill_at && !exited) {
      if (cancel && cancel->load())
        result.cancelled = true;
      else
        result.timed_out = true;
      child.signal_group(SIGTERM);
      kill_at = now + command.kill_grace;
    }
    if (kill_at && now >= *kill_at && !exited) child.signal_group(SIGKILL);

    if (pipe_open) {
      pollfd pfd{read_end.get(), POLLIN, 0};
      const int ready = ::poll(&pfd, 1, 50);
      if (ready > 0) {
        char buf[4096];
        const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
        if (n > 0) {
          partial.append(buf, static_cast<std::size_t>(n));
          std::size_t nl;
          while ((nl = partial.find('\n')) != std::string::npos) {
            emit(partial.substr(0, nl));
            partial.erase(0, nl + 1);
          }
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
          pipe_open = false;
        }
      } else if (exited) {
        pipe_open = false; // child gone and nothing more to read right now
      }
    } else {
      ::usleep(20000);
    }
  }
  if (!partial.empty()) emit(partial);

  if (WIFSIGNALED(status))
    result.term_signal = WTERMSIG(status);
  else if (WIFEXITED(status))
    result.exit_code = WEXITSTATUS(status);
  // Leftover members of the group (daemons the child started) are not ours to keep.
  if (result.timed_out || result.cancelled) ::kill(-pid, SIGKILL);
  return result;
}

} // namespace kb::sys

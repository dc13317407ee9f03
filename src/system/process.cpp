#include "kasm_bootstrap/system/process.hpp"

#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/message_text.hpp"
#include "kasm_bootstrap/util/redactor.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <system_error>
#include <thread>

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
    // Our own configuration (config/loader.cpp, KASM_BOOTSTRAP_<KEY>) can carry the manager
    // token or the nginx key; no child needs it, and /proc/<pid>/environ would show it.
    if (entry.rfind("KASM_BOOTSTRAP_", 0) == 0) continue;
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

// argv[0] as a path, searched in our PATH as posix_spawnp would: after fork only
// async-signal-safe calls may run, and a PATH search is not one.
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* env_path = std::getenv("PATH"); // NOLINT(concurrency-mt-unsafe): read-only use
  std::istringstream dirs(env_path && *env_path ? env_path
                                                : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return name; // execve fails with ENOENT, reported as "cannot start"
}

// fork + execve (docs/platform.md). The child leads its own process group and gets SIGKILL
// when we die (PR_SET_PDEATHSIG: when the thread that forked it ends, which waits for it),
// so a SIGKILLed kasm-bootstrap does not leave the installer running on its own.
pid_t spawn(const std::string& path, const std::string& argv0, char* const argv[], char* const envp[], int out_fd,
            const std::filesystem::path& dir) {
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  const pid_t parent = ::getpid();
  const char* dir_c = dir.empty() ? nullptr : dir.c_str();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(err_pipe[0]);
    ::close(err_pipe[1]);
    throw std::system_error(e, std::generic_category(), "cannot start " + argv0 + " (fork)");
  }
  if (pid == 0) {
    // From here to execve only async-signal-safe calls: this is a copy of a threaded process.
    const auto fail = [fd = err_pipe[1]](int e) {
      (void)!::write(fd, &e, sizeof e);
      ::_exit(127);
    };
    ::close(err_pipe[0]);
    if (::setpgid(0, 0) != 0) fail(errno);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(errno);
    if (::getppid() != parent) ::_exit(127); // the parent died before the signal was armed
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, STDIN_FILENO) < 0) fail(errno);
    if (::dup2(out_fd, STDOUT_FILENO) < 0 || ::dup2(out_fd, STDERR_FILENO) < 0) fail(errno);
    if (dir_c && ::chdir(dir_c) != 0) fail(errno);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (const int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD})
      ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    // Single-threaded here: the child of fork has only the thread that forked.
    ::sigprocmask(SIG_SETMASK, &none, nullptr); // NOLINT(concurrency-mt-unsafe)
    ::execve(path.c_str(), argv, envp);
    fail(errno);
  }
  ::close(err_pipe[1]);
  ::setpgid(pid, pid); // also from here, so the group exists before we could signal it
  int child_errno = 0;
  ssize_t n = 0;
  do {
    n = ::read(err_pipe[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(err_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw std::system_error(child_errno, std::generic_category(), "cannot start " + argv0);
  }
  return pid;
}

// Writes the group record while the child runs and removes it when the runner is done.
class GroupRecord {
public:
  GroupRecord(std::filesystem::path path, pid_t pgid) : path_(std::move(path)) {
    if (path_.empty()) return;
    const auto start = process_start_time(pgid);
    try {
      AtomicFile file(path_, 0600);
      file.write(std::to_string(pgid) + " " + (start ? std::to_string(*start) : "0") + "\n");
      file.commit();
    } catch (const std::exception&) {
      path_.clear(); // the run goes on; only the clean-up after a SIGKILL loses its hint
    }
  }
  GroupRecord(const GroupRecord&) = delete;
  GroupRecord& operator=(const GroupRecord&) = delete;
  ~GroupRecord() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }

private:
  std::filesystem::path path_;
};

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

std::optional<unsigned long long> process_start_time(pid_t pid) {
  std::optional<std::string> stat;
  try {
    stat = read_regular_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (!stat) return std::nullopt;
  const auto paren = stat->rfind(')'); // the command name may hold spaces and ')'
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat->substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i)
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  return std::nullopt;
}

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

std::optional<std::string> end_recorded_group(const std::filesystem::path& record, std::chrono::milliseconds grace) {
  std::optional<std::string> text;
  try {
    text = read_regular_file(record, 256);
  } catch (const std::exception&) {
  }
  ::unlink(record.c_str());
  if (!text) return std::nullopt;
  long long pgid = 0;
  unsigned long long start = 0;
  std::istringstream in(*text);
  if (!(in >> pgid >> start) || pgid <= 1) return std::nullopt;
  const auto group = static_cast<pid_t>(pgid);
  if (::kill(-group, 0) != 0) return std::nullopt; // nothing of that group is left
  // A process with the leader's pid must be the leader itself: a pid (and so a group id)
  // is reused only once nothing uses it any more (docs/platform.md).
  if (const auto now = process_start_time(group); now && start != 0 && *now != start) return std::nullopt;
  std::string leader = "its leader has exited";
  try {
    if (auto cmdline = read_regular_file("/proc/" + std::to_string(group) + "/cmdline", std::size_t{64} * 1024)) {
      std::vector<std::string> args;
      std::string arg;
      std::istringstream parts(*cmdline);
      while (std::getline(parts, arg, '\0'))
        args.push_back(arg);
      if (!args.empty()) leader = util::quote_for_message(describe_command(args), 160);
    }
  } catch (const std::exception&) {
  }
  const auto gone = [&] { return ::kill(-group, 0) != 0; };
  ::kill(-group, SIGTERM);
  const auto deadline = Clock::now() + grace;
  while (!gone() && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const bool needed_kill = !gone();
  if (needed_kill) {
    ::kill(-group, SIGKILL);
    for (int i = 0; i < 40 && !gone(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return fmt::format("ended process group {} ({}) that an earlier run left running{}", group, leader,
                     needed_kill ? " (SIGKILL after SIGTERM)" : "");
}

std::string describe_command(const std::vector<std::string>& argv) {
  // Masked part by part, then quoted: quoting first would turn a token holding a quote
  // into a spelling the redactor might not know.
  std::string line;
  for (const auto& a : argv) {
    if (!line.empty()) line += ' ';
    const auto masked = scrub(a);
    line += masked == a ? quote(a) : masked;
  }
  return scrub(line);
}

ProcessResult ProcessRunner::run(const Command& command, const std::atomic<bool>* cancel) {
  if (command.argv.empty()) throw std::invalid_argument("empty command");

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);

  auto argv_strings = command.argv;
  auto env_strings = build_environment(command.env_overrides);
  auto argv = c_array(argv_strings);
  auto envp = c_array(env_strings);

  const pid_t pid = spawn(resolve_program(command.argv[0]), command.argv[0], argv.data(), envp.data(), write_end.get(),
                          command.working_dir);
  write_end.reset();
  // Destroyed in reverse: the group is killed (Child) before its record goes.
  const GroupRecord record(command.group_record, pid);
  Child child(pid);

  ProcessResult result;
  std::string partial;
  LineScrubber scrubber; // one per stream: it remembers a secret begun on the last line
  auto emit = [&](std::string raw) {
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    const std::string line = scrubber.scrub(raw);
    if (command.on_output_line) command.on_output_line(line);
    if (command.tail_lines > 0) {
      result.tail.push_back(line);
      if (result.tail.size() > command.tail_lines) result.tail.pop_front();
    }
  };

  const auto start = Clock::now();
  std::optional<Clock::time_point> kill_at;
  bool pipe_open = true;
  int status = 0;
  bool exited = false;
  // The child's exit wakes the poll below through its pidfd (pidfd_open(2), Linux 5.3),
  // so the run goes on the moment it ends instead of at the next tick. Without one (older
  // kernel, seccomp), the loop ticks every kTick and checks.
  const UniqueFd exit_fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  constexpr int kTickMs = 50;                  // also how soon a cancel or a deadline is noticed
  auto read_available = [&]() -> std::size_t { // bytes read
    char buf[4096];
    const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n > 0) {
      partial.append(buf, static_cast<std::size_t>(n));
      std::size_t nl;
      while ((nl = partial.find('\n')) != std::string::npos) {
        emit(partial.substr(0, nl));
        partial.erase(0, nl + 1);
      }
      return static_cast<std::size_t>(n);
    }
    if (n == 0 || (errno != EINTR && errno != EAGAIN)) pipe_open = false;
    return 0;
  };
  for (;;) {
    if (!exited && child.try_reap(status)) exited = true;
    if (exited) {
      // Grandchildren may keep the pipe open after the child exits. One of them may still
      // be passing on the child's own last lines: Kasm's install.sh sends all its output
      // through `exec &> >(tee LOG)` (docs/kasm-installer.md §2), and on a loaded machine
      // tee writes them after the shell has exited. So read until end of file, but for at
      // most kDrainGrace and one pipe's capacity: a grandchild that never closes the pipe
      // (a daemon) or never stops writing to it (its log) must not keep us here.
      constexpr auto kDrainGrace = std::chrono::seconds(2);
      const auto drain_until = Clock::now() + kDrainGrace;
      const int capacity = ::fcntl(read_end.get(), F_GETPIPE_SZ);
      std::size_t budget = capacity > 0 ? static_cast<std::size_t>(capacity) : std::size_t{1} << 20;
      while (pipe_open && budget > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(drain_until - Clock::now());
        if (left.count() <= 0) break;
        pollfd pfd{read_end.get(), POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), kTickMs))) < 0 && errno != EINTR) break;
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) budget -= std::min(budget, read_available());
      }
      break;
    }

    const auto now = Clock::now();
    const bool want_stop =
        (cancel && cancel->load()) || (command.timeout.count() > 0 && now - start >= command.timeout);
    if (want_stop && !kill_at) {
      if (cancel && cancel->load())
        result.cancelled = true;
      else
        result.timed_out = true;
      child.signal_group(SIGTERM);
      kill_at = now + command.kill_grace;
    }
    if (kill_at && now >= *kill_at) child.signal_group(SIGKILL);

    pollfd fds[2] = {{read_end.get(), POLLIN, 0}, {exit_fd.get(), POLLIN, 0}};
    const nfds_t count = exit_fd ? 2 : 1;
    if (!pipe_open) fds[0].fd = -1; // poll(2) skips a negative fd
    if (!pipe_open && !exit_fd) {
      ::usleep(kTickMs * 1000 / 5); // nothing to wait on but the tick
      continue;
    }
    const int ready = ::poll(fds, count, kTickMs);
    if (ready > 0 && pipe_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) read_available();
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

#include "test_support.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ; // NOLINT: POSIX

namespace kb::test {
namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/kb-test.XXXXXX";
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

fs::path TempDir::write(const std::string& relative, const std::string& content) const {
  const auto p = path_ / relative;
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << content;
  return p;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

namespace {

std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    const auto name = entry.substr(0, entry.find('='));
    if (extra.count(name)) continue;
    env.push_back(entry);
  }
  for (const auto& [k, v] : extra)
    env.push_back(k + "=" + v);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v)
    out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env, int in_fd, int out_fd,
            int err_fd, bool new_group) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (new_group) {
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  }
  auto args = argv;
  auto envs = merged_environment(env);
  auto a = c_strings(args);
  auto e = c_strings(envs);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, a[0], &fa, &attr, a.data(), e.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

} // namespace

RunResult run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                      const std::string& stdin_text, std::chrono::milliseconds timeout) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) || ::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC))
    throw std::runtime_error("pipe failed");
  const pid_t pid = spawn(argv, env, in_pipe[0], out_pipe[1], err_pipe[1], true);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  std::thread writer([fd = in_pipe[1], text = stdin_text] {
    std::size_t off = 0;
    ::signal(SIGPIPE, SIG_IGN);
    while (off < text.size()) {
      const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    ::close(fd);
  });
  RunResult r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int open = 2;
  bool killed = false;
  while (open > 0) {
    if (!killed && std::chrono::steady_clock::now() > deadline) {
      ::kill(-pid, SIGKILL);
      killed = true;
    }
    if (::poll(fds, 2, 100) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[8192];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  writer.join();
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (killed) r.err += "\n[test harness: killed after timeout]";
  return r;
}

std::string binary_path() {
  if (const char* b = std::getenv("KB_TEST_BINARY"); b && *b) return b;
  return KB_BINARY;
}

RunResult run_binary(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                     const std::string& stdin_text) {
  std::vector<std::string> argv{binary_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, env, stdin_text);
}

fs::path source_dir() { return KB_SOURCE_DIR; }

FakeServer::FakeServer(const std::string& script, const std::vector<std::string>& args,
                       const std::optional<std::string>& netns) {
  std::vector<std::string> argv;
  if (netns) argv = {"ip", "netns", "exec", *netns};
  argv.insert(argv.end(), {"python3", "-u", (source_dir() / "tests/fakes" / script).string(), "--port", "0"});
  argv.insert(argv.end(), args.begin(), args.end());
  char log_template[] = "/tmp/kb-fake-log.XXXXXX";
  const int log_fd = ::mkstemp(log_template);
  log_path_ = log_template;
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_ = spawn(argv, {}, null_fd, out_pipe[1], log_fd, true);
  ::close(null_fd);
  ::close(log_fd);
  ::close(out_pipe[1]);
  // Wait (bounded) for "READY <port>".
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline && got.find('\n') == std::string::npos) {
    pollfd p{out_pipe[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    const ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out_pipe[0]);
  if (got.rfind("READY ", 0) != 0) {
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    throw std::runtime_error("fake server " + script + " did not start: " + got + read_file(log_path_));
  }
  port_ = std::stoi(got.substr(6));
}

FakeServer::~FakeServer() {
  if (pid_ > 0) {
    ::kill(-pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      ::usleep(20000);
    }
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::error_code ec;
  fs::remove(log_path_, ec);
}

std::string FakeServer::url(const std::string& host) const {
  const bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port_);
}

std::string FakeServer::log() const { return read_file(log_path_); }

bool running_as_root() { return ::geteuid() == 0; }

bool network_namespaces_available() {
  static const bool available = [] {
    if (!running_as_root()) return false;
    const std::string name = "kbprobe" + std::to_string(::getpid());
    if (run_process({"ip", "netns", "add", name}).exit_code != 0) return false;
    run_process({"ip", "netns", "delete", name});
    return true;
  }();
  return available;
}

void must_run(const std::vector<std::string>& argv) {
  const auto r = run_process(argv);
  if (r.exit_code != 0) {
    std::string line;
    for (const auto& a : argv)
      line += a + " ";
    throw std::runtime_error("setup command failed (" + std::to_string(r.exit_code) + "): " + line + "\n" + r.out +
                             r.err);
  }
}

NetNamespace::NetNamespace(const std::string& name_prefix) {
  static std::atomic<int> counter{0};
  name_ = name_prefix + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  must_run({"ip", "netns", "add", name_});
  must_run({"ip", "-n", name_, "link", "set", "lo", "up"});
}

NetNamespace::~NetNamespace() { run_process({"ip", "netns", "delete", name_}); }

void NetNamespace::exec(const std::vector<std::string>& argv) const {
  std::vector<std::string> full{"ip", "netns", "exec", name_};
  full.insert(full.end(), argv.begin(), argv.end());
  must_run(full);
}

namespace {
std::atomic<int> g_skipped{0};
} // namespace

void note_skip(const std::string& reason) {
  const char* no_skip = std::getenv("KB_TEST_NO_SKIP"); // NOLINT(concurrency-mt-unsafe): read-only environment
  if (no_skip && std::string(no_skip) == "1")
    FAIL("this test would be skipped, but KB_TEST_NO_SKIP=1 says every capability is present here: " << reason);
  WARN("skipped: " << reason);
  ++g_skipped;
}

int skipped_tests() { return g_skipped.load(); }

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot find a free TCP port");
  return ntohs(addr.sin_port);
}

} // namespace kb::test

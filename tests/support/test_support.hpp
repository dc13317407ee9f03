#pragma once
// Shared helpers for the Catch2 suites: temporary root directories, the real binary run
// as a child process, and fake servers (tests/fakes/*.py) run as real processes that
// speak real protocols on loopback or inside a test's network namespace.
//
// Catch2 is reached only through this header and main.cpp, so moving to v3 is a matter
// of changing the include below.

#include <catch2/catch.hpp>

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace kb::test {

// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Writes `content` at `relative` (parents created); returns the full path.
  std::filesystem::path write(const std::string& relative, const std::string& content) const;

private:
  std::filesystem::path path_;
};

std::string read_file(const std::filesystem::path& path);

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] looked up in PATH when it has no '/'), feeding `stdin_text`, with
// `env` added to the environment. Stops it after `timeout`.
RunResult run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
                      const std::string& stdin_text = "", std::chrono::milliseconds timeout = std::chrono::seconds(60));

// The kasm-bootstrap binary under test (KB_BINARY, or $KB_TEST_BINARY to test another
// build such as the static one).
std::string binary_path();
RunResult run_binary(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                     const std::string& stdin_text = "");

std::filesystem::path source_dir();

// A TCP port nothing listens on right now (bound to port 0 on every address, then closed),
// for a service a test starts that cannot pick its own, like a container's published port.
int free_tcp_port();

// A fake server: `python3 tests/fakes/<script> --port 0 [args...]`, which prints
// "READY <port>" on stdout once it listens. Killed (whole process group) on destruction.
// `netns`, when set, runs it inside that network namespace (`ip netns exec`).
class FakeServer {
public:
  FakeServer(const std::string& script, const std::vector<std::string>& args = {},
             const std::optional<std::string>& netns = std::nullopt);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;
  int port() const { return port_; }
  std::string url(const std::string& host = "127.0.0.1") const;
  pid_t pid() const { return pid_; }
  // Lines the server wrote to stderr so far (a request log, by convention).
  std::string log() const;

private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::filesystem::path log_path_;
};

bool running_as_root();
// True when `ip netns add` works here (root, iproute2, kernel support). Probed once.
bool network_namespaces_available();

// A network namespace created for one test and deleted on destruction.
class NetNamespace {
public:
  explicit NetNamespace(const std::string& name_prefix);
  ~NetNamespace();
  NetNamespace(const NetNamespace&) = delete;
  NetNamespace& operator=(const NetNamespace&) = delete;
  const std::string& name() const { return name_; }
  // Runs a command inside the namespace; throws on failure (setup commands).
  void exec(const std::vector<std::string>& argv) const;

private:
  std::string name_;
};

// Runs a setup command on the host; throws with its output when it fails.
void must_run(const std::vector<std::string>& argv);

// Skips. A test that cannot run here (not root, a tool or kernel feature missing) says so
// with KB_SKIP(reason): the reason is shown, the test case returns, and the test process
// exits with kSkipExitCode, which ctest reports as skipped (SKIP_RETURN_CODE in
// tests/CMakeLists.txt), never as passed. Where every capability must be present
// (scripts/test.sh sets KB_TEST_NO_SKIP=1 when it runs as root), a skip is a failure.
inline constexpr int kSkipExitCode = 77;
void note_skip(const std::string& reason);
// How many test cases of this process skipped (main.cpp turns it into the exit code).
int skipped_tests();

} // namespace kb::test

#define KB_SKIP(reason)                                                                                                \
  do {                                                                                                                 \
    std::ostringstream kb_skip_reason;                                                                                 \
    kb_skip_reason << reason;                                                                                          \
    kb::test::note_skip(kb_skip_reason.str());                                                                         \
    return;                                                                                                            \
  } while (false)

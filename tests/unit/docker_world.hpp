#pragma once
// A real, private Docker Engine for one test (tests/fakes/docker_world.sh): dockerd on
// its own socket and data root, the offline nginx+busybox image imported, and a
// `docker` CLI pointed at it for setup. Destroying it removes the containers and stops
// dockerd by PID. Tests skip (with a warning) when dockerd cannot run here.

#include "test_support.hpp"

#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>

namespace kb::test {

inline bool docker_world_possible() {
  return running_as_root() && ::access("/usr/sbin/dockerd", X_OK) == 0 && ::access("/usr/bin/docker", X_OK) == 0;
}

// A network namespace of the test's own, deleted with it (ip netns).
class TestNetns {
public:
  explicit TestNetns(bool wanted) {
    if (!wanted) return;
    static int counter = 0;
    name_ = "kbdw" + std::to_string(::getpid()) + "n" + std::to_string(++counter);
    if (run_process({"ip", "netns", "add", name_}, {}, "", std::chrono::seconds(30)).exit_code != 0)
      throw std::runtime_error("ip netns add " + name_ + " failed");
    run_process({"ip", "-n", name_, "link", "set", "lo", "up"}, {}, "", std::chrono::seconds(30));
  }
  ~TestNetns() {
    if (!name_.empty()) run_process({"ip", "netns", "del", name_}, {}, "", std::chrono::seconds(30));
  }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;
  const std::string& name() const { return name_; }

private:
  std::string name_;
};

// kHost: dockerd in the test's own network namespace, no bridge and no iptables (enough
// for containers with --network none). kOwnNamespace: in a namespace made for it, with
// the default bridge and iptables, as on an agent; for tests whose release creates Docker
// networks (bridges) or publishes ports, which must not land in the host's namespace.
enum class DockerNetwork { kHost, kOwnNamespace };

class DockerWorld {
public:
  explicit DockerWorld(DockerNetwork network = DockerNetwork::kHost)
      : netns_(network == DockerNetwork::kOwnNamespace), dir_(dir_holder_.path() / "w") {
    std::vector<std::string> argv{script(), "start", dir_.string()};
    if (!netns_.name().empty()) argv.insert(argv.end(), {"--netns", netns_.name()});
    const auto r = run_process(argv, {}, "", std::chrono::seconds(240));
    if (r.exit_code != 0) throw std::runtime_error("docker_world.sh start failed: " + r.out + r.err);
    std::istringstream in(r.out);
    std::string key, value;
    while (in >> key >> value) {
      if (key == "SOCKET") socket_ = value;
      if (key == "IMAGE") image_ = value;
      if (key == "DOCKER") cli_ = value;
    }
    if (socket_.empty() || image_.empty()) throw std::runtime_error("docker_world.sh said: " + r.out);
  }
  // Members go in reverse order: dockerd stops before its namespace is deleted.
  ~DockerWorld() { run_process({script(), "stop", dir_.string()}, {}, "", std::chrono::seconds(120)); }
  DockerWorld(const DockerWorld&) = delete;
  DockerWorld& operator=(const DockerWorld&) = delete;

  const std::string& socket() const { return socket_; }
  // Makes the engine reachable as <root>/var/run/docker.sock. A hard link, not a symlink:
  // RootFs resolves every path inside the root, so a symlink to the engine's socket out
  // of the root is refused, as it must be (docs/platform.md, "The root boundary"). The
  // temp root and the world share /tmp's file system, which a hard link needs.
  void link_socket_into(const std::filesystem::path& root) const {
    std::filesystem::create_directories(root / "var/run");
    std::filesystem::create_hard_link(socket_, root / "var/run/docker.sock");
  }
  const std::string& image() const { return image_; }

  // `docker -H unix://SOCK args...`; throws when it fails.
  std::string docker(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{cli_, "-H", "unix://" + socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run_process(argv, {}, "", std::chrono::seconds(120));
    if (r.exit_code != 0) throw std::runtime_error("docker " + args.front() + " failed: " + r.out + r.err);
    return r.out;
  }

  // nginx in the foreground (or `command`), no network, like Kasm's proxy.
  void run_proxy(const std::vector<std::string>& extra = {}, const std::vector<std::string>& command = {}) const {
    std::vector<std::string> args{"run", "-d", "--name", "kasm_proxy", "--network", "none"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(image_);
    args.insert(args.end(), command.begin(), command.end());
    docker(args);
  }
  // A long-running busybox process, optionally with a health check.
  void run_agent(const std::vector<std::string>& extra = {}, const std::string& name = "kasm_agent") const {
    std::vector<std::string> args{"run", "-d", "--name", name, "--network", "none"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {image_, "/bin/sleep", "3600"});
    docker(args);
  }

  // Polls `docker inspect` (bounded) until the Go template prints `want`.
  bool wait_for(const std::string& container, const std::string& format, const std::string& want,
                std::chrono::seconds limit = std::chrono::seconds(60)) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      std::vector<std::string> argv{cli_, "-H", "unix://" + socket_, "inspect", "-f", format, container};
      auto r = run_process(argv);
      if (r.exit_code == 0 && r.out.substr(0, r.out.find('\n')) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

private:
  static std::string script() { return (source_dir() / "tests/fakes/docker_world.sh").string(); }

  TestNetns netns_; // first made, last gone
  TempDir dir_holder_;
  std::filesystem::path dir_;
  std::string socket_, image_, cli_ = "/usr/bin/docker";
};

} // namespace kb::test

// Opens a test that needs the real engine; skips it (with a visible warning) when
// dockerd cannot run on this machine.
#define KB_REQUIRE_DOCKER_WORLD()                                                                                      \
  if (!kb::test::docker_world_possible()) {                                                                            \
    KB_SKIP("needs root and Debian's docker.io (dockerd) — see scripts/install-deps.sh --test");                       \
  }

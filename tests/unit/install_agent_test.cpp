// The installer run and the release/lock/install steps, against the fake kasm_release
// (tests/fakes/kasm_release/install.sh) under a temporary root, and the token's absence
// from every log, status, state and dry-run output.

#include "lock_holder.hpp"
#include "release_fixture.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/config/serialize.hpp"
#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/installer.hpp"
#include "kasm_bootstrap/kasm/release_extract.hpp"
#include "kasm_bootstrap/plan/executor.hpp"
#include "kasm_bootstrap/plan/observers.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/package_locks.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <signal.h>

#include <cstdlib>
#include <fstream>

using namespace kb;
using namespace kb::test;
namespace fs = std::filesystem;

namespace {

const std::string kAgentToken = "tok-5ecr3t-agent-registration-7f3a9c";
const std::string kServerId = "5b3c2a10-1f2e-4d5c-9b8a-7e6f5d4c3b2a";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// A temporary root that the fake installer writes into (KASM_FAKE_ROOT), with the fake
// release unpacked where fetch-release would put it. No Docker Engine here
// (KASM_FAKE_DOCKER=none: the fake skips its networks; tests/fakes/README.md).
struct InstallFixture {
  TempDir root;
  Secret token{kAgentToken};
  fs::path release_dir = root.path() / "var/cache/kasm-bootstrap/kasm-release-test/kasm_release";
  fs::path record = root.path() / "fake-installer";
  fs::path state_dir = root.path() / "var/lib/kasm-bootstrap";
  sys::RootFs rootfs{root.path()};

  InstallFixture() {
    ::setenv("KASM_FAKE_ROOT", root.path().c_str(), 1);
    ::setenv("KASM_FAKE_DOCKER", "none", 1);
    fs::create_directories(state_dir);
  }
  ~InstallFixture() {
    ::unsetenv("KASM_FAKE_ROOT");
    ::unsetenv("KASM_FAKE_DOCKER");
  }

  void unpack_release(const std::vector<std::string>& extra = {}) {
    const auto archive = root.path() / "var/cache/kasm-bootstrap/r.tar.gz";
    fs::create_directories(archive.parent_path());
    make_release(archive, extra);
    kasm::extract_tar_gz(archive, release_dir.parent_path());
  }
  void mode(const std::string& m) const {
    fs::create_directories(record);
    std::ofstream(record / "mode") << m << "\n";
  }
  kasm::InstallerInvocation invocation() const {
    kasm::InstallerInvocation in;
    in.install_script = release_dir / "install.sh";
    in.proxy_port = 443;
    in.extra_args = {"-I"};
    in.run.fs = &rootfs;
    in.run.state_dir = "/var/lib/kasm-bootstrap";
    in.run.docker_host = "unix://" + (root.path() / "var/run/docker.sock").string();
    in.run.timeout = std::chrono::seconds(60);
    in.run.kill_grace = std::chrono::milliseconds(300);
    in.lock_timeout = std::chrono::seconds(45);
    return in;
  }
  std::string run_error(kasm::InstallerInvocation in) const {
    sys::ProcessRunner runner;
    try {
      kasm::run_installer(runner, in);
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::kInstall);
      return e.what();
    }
    return "(no error)";
  }
  int runs() const { return std::stoi(read_file(record / "runs")); }
  // An APT_CONFIG file, or an installer log in the private working directory.
  bool temp_files_left() const {
    for (const auto& e : fs::recursive_directory_iterator(state_dir)) {
      const auto name = e.path().filename().string();
      if (name.rfind("apt-config", 0) == 0 || name.rfind("kasm_install_", 0) == 0) return true;
    }
    return false;
  }
};

bool process_gone(pid_t pid) {
  const auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

std::string all_files_under(const fs::path& dir) {
  std::string all;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) all += read_file(e.path());
  return all;
}

} // namespace

TEST_CASE("installer: argv is Kasm's agent flags with placeholders, -H -D -N -L, then the extras", "[install]") {
  InstallFixture f;
  const auto argv = kasm::installer_argv(f.invocation(), "placeholder-0123");
  CHECK(argv == std::vector<std::string>{"bash", (f.release_dir / "install.sh").string(), "-e", "-S", "agent", "-p",
                                         kasm::kPlaceholderAddress, "-m", kasm::kPlaceholderManager, "-i",
                                         kasm::kPlaceholderServerId, "-M", "placeholder-0123", "-H", "-D", "-N", "-L",
                                         "443", "-I"});
  CHECK(std::find(argv.begin(), argv.end(), "-r") == argv.end()); // configure-agent writes the provider
  auto in = f.invocation();
  in.proxy_port = 8443;
  in.service_images = "/srv/images.tar.gz";
  const auto custom = kasm::installer_argv(in, "t");
  CHECK(std::vector<std::string>(custom.end() - 5, custom.end()) ==
        std::vector<std::string>{"-L", "8443", "-s", "/srv/images.tar.gz", "-I"});
  CHECK(kasm::describe_installer(f.invocation()).find("-M '<random placeholder>' -H -D -N -L 443 -I") !=
        std::string::npos);
}

TEST_CASE("installer: a good run gets placeholders, apt settings, DOCKER_HOST and a private working directory",
          "[install]") {
  InstallFixture f;
  f.unpack_release();
  sys::ProcessRunner runner;
  LogCapture capture;
  const auto outcome = kasm::run_installer(runner, f.invocation());
  CHECK(outcome.attempts == 1);
  CHECK(f.runs() == 1);
  const auto argv = lines_of(read_file(f.record / "argv"));
  REQUIRE(argv.size() == 17);
  CHECK(std::vector<std::string>(argv.begin(), argv.begin() + 10) ==
        std::vector<std::string>{"-e", "-S", "agent", "-p", kasm::kPlaceholderAddress, "-m", kasm::kPlaceholderManager,
                                 "-i", kasm::kPlaceholderServerId, "-M"});
  CHECK(argv[10].rfind("placeholder-", 0) == 0); // a random throw-away value
  CHECK(std::vector<std::string>(argv.begin() + 11, argv.end()) ==
        std::vector<std::string>{"-H", "-D", "-N", "-L", "443", "-I"});
  const auto env = lines_of(read_file(f.record / "env"));
  CHECK(std::count(env.begin(), env.end(), "DEBIAN_FRONTEND=noninteractive") == 1);
  CHECK(std::count(env.begin(), env.end(), "DOCKER_HOST=unix://" + (f.root.path() / "var/run/docker.sock").string()) ==
        1);
  const auto apt_config = std::find_if(env.begin(), env.end(), [](auto& l) { return l.rfind("APT_CONFIG=", 0) == 0; });
  REQUIRE(apt_config != env.end());
  CHECK(apt_config->find((f.state_dir / "apt-config.").string()) != std::string::npos);
  CHECK(read_file(f.record / "apt-config").find("DPkg::Lock::Timeout \"45\";") != std::string::npos);
  // It ran in the private working directory, where its log with the token would be.
  CHECK(lines_of(read_file(f.record / "cwd")) == std::vector<std::string>{(f.state_dir / "work").string()});
  struct stat st {};
  REQUIRE(::lstat((f.state_dir / "work").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK_FALSE(f.temp_files_left());

  // The installer's own link is absolute (/opt/kasm/1.15.0): read it inside the root.
  const sys::RootFs rootfs(f.root.path());
  const auto yaml = rootfs.read_file("/opt/kasm/current/conf/app/agent.app.config.yaml");
  REQUIRE(yaml);
  CHECK(yaml->find(std::string("server_id: ") + kasm::kPlaceholderServerId) != std::string::npos);
  CHECK(rootfs.read_link("/opt/kasm/current") == fs::path("/opt/kasm/1.15.0"));
  CHECK(rootfs.exists("/opt/kasm/1.15.0/certs/kasm_nginx.key"));
  CHECK(rootfs.exists("/opt/kasm/current/bin/start"));
  // Output streamed into the log line by line (the capture sits before the masking sinks).
  CHECK(capture.text().find("install.sh: Installation Complete") != std::string::npos);
}

TEST_CASE("installer: a failure reports the exit status and the last lines; its log is drained and removed",
          "[install]") {
  InstallFixture f;
  f.unpack_release();
  f.mode("fail");
  LogCapture capture;
  const auto message = f.run_error(f.invocation());
  INFO(message);
  CHECK(message.find("install.sh failed (exit status") != std::string::npos);
  CHECK(message.find("An error has occurred please review the log at ./kasm_install_") != std::string::npos);
  CHECK(f.runs() == 1);
  // The fake kept its log, as the real one does after a set -e failure; we logged its tail
  // and removed it.
  CHECK(capture.text().find("install.sh left /var/lib/kasm-bootstrap/work/kasm_install_") != std::string::npos);
  CHECK(capture.text().find("Setting Default Manager Token as placeholder-") != std::string::npos);
  CHECK_FALSE(f.temp_files_left());
}

TEST_CASE("installer: a hung installer is stopped at the deadline with its whole group", "[install]") {
  InstallFixture f;
  f.unpack_release();
  f.mode("hang");
  auto in = f.invocation();
  in.run.timeout = std::chrono::seconds(1);
  const auto message = f.run_error(in);
  CHECK(message.find("did not finish within 1 s") != std::string::npos);
  CHECK(message.find("Pulling service images") != std::string::npos);
  const pid_t child = std::stoi(read_file(f.record / "hang-child.pid"));
  CHECK(process_gone(child));
  CHECK_FALSE(f.temp_files_left());
}

TEST_CASE("installer: a prompt fails at once because stdin is /dev/null", "[install]") {
  InstallFixture f;
  f.unpack_release();
  f.mode("prompt");
  const auto message = f.run_error(f.invocation());
  CHECK(message.find("exit status 1") != std::string::npos);
  // read(1) got end-of-file and set -e ended the script: its ERR trap speaks.
  CHECK(message.find("An error has occurred please review the log") != std::string::npos);
}

TEST_CASE("installer: an apt lock failure is retried once, after the lock is free", "[install]") {
  InstallFixture f;
  f.unpack_release();
  f.mode("apt-lock-once");
  sys::RootFs rootfs(f.root.path());
  HeldLock held(f.root.path() / "var/lib/dpkg/lock-frontend", 0.5);
  int waits = 0;
  std::vector<std::string> holders;
  auto in = f.invocation();
  in.before_attempt = [&] {
    ++waits;
    sys::LockWaitOptions o;
    o.timeout = std::chrono::seconds(30);
    o.on_holder = [&](const sys::LockHolder& h) { holders.push_back(h.process); };
    sys::wait_for_package_locks(rootfs, o);
  };
  sys::ProcessRunner runner;
  const auto outcome = kasm::run_installer(runner, in);
  CHECK(outcome.attempts == 2);
  CHECK(f.runs() == 2);
  CHECK(waits == 2);
  CHECK(holders == std::vector<std::string>{"apt-get"});
  CHECK(rootfs.exists("/opt/kasm/current/conf/app/agent.app.config.yaml"));
}

TEST_CASE("installer: an apt lock failure that persists fails after the one retry", "[install]") {
  InstallFixture f;
  f.unpack_release();
  f.mode("apt-lock");
  const auto message = f.run_error(f.invocation());
  CHECK(message.find("exit status 100) on attempt 2") != std::string::npos);
  CHECK(message.find("Could not get lock") != std::string::npos);
  CHECK(f.runs() == 2);
}

TEST_CASE("installer: a missing install.sh is a clear error", "[install]") {
  InstallFixture f;
  const auto message = f.run_error(f.invocation());
  CHECK(message.find("installer not found: " + (f.release_dir / "install.sh").string()) != std::string::npos);
}

TEST_CASE("release and install steps: a run downloads, waits, installs, and the token reaches nothing",
          "[install][steps]") {
  InstallFixture f;
  TestCa ca;
  TempDir served;
  const auto archive = served.path() / "kasm_release.tar.gz";
  const auto sha = make_release(archive);
  ReleaseServer server(ca, archive);
  // The CA is found the way production finds the system bundle: under the root dir.
  fs::create_directories(f.root.path() / "etc/ssl/certs");
  fs::copy_file(ca.ca_cert, f.root.path() / "etc/ssl/certs/ca-certificates.crt");

  config::Config config;
  config.server_id = kServerId;
  config.manager_address = "manager.example.test";
  config.manager_token = Secret(kAgentToken);
  config.provider = "aws";
  config.agent_address = "10.1.2.3";
  config.swap_size = "off";
  config.release_url = server.url();
  config.release_sha256 = sha;
  config.install_timeout_seconds = 60;
  config.lock_timeout_seconds = 30;

  sys::ProcessRunner processes;
  net::HttpClient http;
  Machine machine{sys::RootFs(f.root.path()), processes, http};
  auto make_plan = [] {
    std::vector<std::unique_ptr<plan::Step>> steps;
    steps.push_back(steps::make_preflight());
    steps.push_back(steps::make_detect_address());
    steps.push_back(steps::make_ensure_swap());
    steps.push_back(steps::make_fetch_release());
    steps.push_back(steps::make_wait_package_locks());
    // Without check-manager: no manager here (the e2e suites run the whole plan).
    steps.push_back(steps::with_dependencies(
        steps::make_install_agent(), {steps::id::kEnsureSwap, steps::id::kFetchRelease, steps::id::kWaitPackageLocks}));
    return plan::Plan(std::move(steps));
  };
  const auto log_file = f.root.path() / "var/lib/kasm-bootstrap/kasm-bootstrap.log";
  std::atomic<bool> cancelled{false};

  auto run_once = [&] {
    log::init(log::Verbosity::kQuiet);
    log::add_file(log_file);
    plan::StateStore state(machine.fs, config.state_dir, config::fingerprint(config));
    state.load();
    plan::Executor executor(config, machine, state, cancelled);
    plan::StatusFileObserver status(machine.fs, config.state_dir);
    executor.add_observer(status);
    auto plan = make_plan();
    auto report = executor.run(plan, plan::ExecutorOptions{});
    log::reset();
    return report;
  };

  const auto report = run_once();
  INFO(report.failure_message);
  REQUIRE(report.success());
  CHECK(f.runs() == 1);
  CHECK(read_file(f.record / "argv").find(kAgentToken) == std::string::npos); // install.sh never gets it
  CHECK(read_file(f.record / "env").find(kAgentToken) == std::string::npos);
  const auto log = read_file(log_file);
  CHECK(log.find("install.sh: Installation Complete") != std::string::npos);
  CHECK(log.find("-M '<random placeholder>' -H -D -N -L 443") != std::string::npos);
  CHECK(log.find("release: downloaded") != std::string::npos);
  CHECK(all_files_under(f.root.path() / "var/lib/kasm-bootstrap").find(kAgentToken) == std::string::npos);
  CHECK(all_files_under(f.root.path() / "var/cache/kasm-bootstrap").find(kAgentToken) == std::string::npos);
  const auto& outputs = report.steps;
  const auto fetch = std::find_if(outputs.begin(), outputs.end(), [](auto& s) { return s.id == "fetch-release"; });
  REQUIRE(fetch != outputs.end());
  const auto release_dir = fetch->outputs.at(steps::out::kReleaseDir);
  CHECK(fs::exists(f.root.path() / fs::path(release_dir).relative_path() / "install.sh"));

  // A second run has nothing to do: no download, no second install.
  const auto gets = server.gets().size();
  const auto again = run_once();
  CHECK(again.success());
  CHECK(f.runs() == 1);
  CHECK(server.gets().size() == gets);
}

TEST_CASE("release and install steps: the dry run is honest and masks the token", "[install][steps]") {
  TempDir root;
  TestCa ca;
  TempDir served;
  const auto archive = served.path() / "kasm_release.tar.gz";
  const auto sha = make_release(archive);
  ReleaseServer server(ca, archive);
  const auto cfg = root.write("config.json", nlohmann::json{{"server_id", kServerId},
                                                            {"manager_address", "manager.example.test"},
                                                            {"provider", "aws"},
                                                            {"agent_address", "10.1.2.3"},
                                                            {"release_url", server.url()},
                                                            {"release_sha256", sha},
                                                            {"ca_bundle", "/etc/test-ca.crt"},
                                                            {"install_args", {"-I"}}}
                                                 .dump());
  fs::create_directories(root.path() / "etc");
  fs::copy_file(ca.ca_cert, root.path() / "etc/test-ca.crt");
  const std::map<std::string, std::string> env{{"KASM_BOOTSTRAP_MANAGER_TOKEN", kAgentToken}};
  const auto text = run_binary({"plan", "--root", root.path().string(), "--config", cfg.string()}, env);
  INFO(text.out << text.err);
  CHECK(text.exit_code == 0);
  CHECK(text.out.find(kAgentToken) == std::string::npos);
  CHECK(text.err.find(kAgentToken) == std::string::npos);
  CHECK(text.out.find("fetch  " + server.url()) != std::string::npos);
  CHECK(text.out.find("not cached") != std::string::npos);
  CHECK(text.out.find("CA bundle " + (root.path() / "etc/test-ca.crt").string()) != std::string::npos);
  CHECK(text.out.find("DPkg::Lock::Timeout 600 s") != std::string::npos);
  CHECK(text.out.find("/var/lib/dpkg/lock-frontend  (free now)") != std::string::npos);
  CHECK(server.gets().empty()); // a dry run downloads nothing

  const auto json =
      run_binary({"plan", "--root", root.path().string(), "--config", cfg.string(), "--output", "json"}, env);
  CHECK(json.exit_code == 0);
  CHECK(json.out.find(kAgentToken) == std::string::npos);
  CHECK(json.out.find(std::string("-p ") + kasm::kPlaceholderAddress + " -m " + kasm::kPlaceholderManager + " -i " +
                      kasm::kPlaceholderServerId + " -M '<random placeholder>' -H -D -N -L 443 -I") !=
        std::string::npos);
  // The registration goes into the agent configuration, after the install.
  CHECK(json.out.find("server_id " + kServerId + ", public_hostname 10.1.2.3, provider 'aws'") != std::string::npos);

  // With the archive in the cache, the dry run says so.
  const auto cached = root.path() / "var/cache/kasm-bootstrap" / ("kasm-release-" + sha.substr(0, 16) + ".tar.gz");
  fs::create_directories(cached.parent_path());
  fs::copy_file(archive, cached);
  const auto hit = run_binary({"plan", "--root", root.path().string(), "--config", cfg.string()}, env);
  CHECK(hit.out.find("cache hit: sha256 matches, no download") != std::string::npos);
}

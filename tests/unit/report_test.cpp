// The reporters (src/report/) attached to the real executor running a small plan: the
// sd_notify datagrams received on a real socket of the test's own, the status file, the
// Prometheus textfile parsed back, the console line, and the journald fields.

#include "cert_fixtures.hpp"
#include "docker_world.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/config/serialize.hpp"
#include "kasm_bootstrap/plan/executor.hpp"
#include "kasm_bootstrap/plan/observers.hpp"
#include "kasm_bootstrap/report/console_observer.hpp"
#include "kasm_bootstrap/report/journal_observer.hpp"
#include "kasm_bootstrap/report/metrics.hpp"
#include "kasm_bootstrap/report/sd_notify_observer.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/version.hpp"

#include <nlohmann/json.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

using namespace kb;
using namespace kb::test;

namespace {

// Steps of the test's own: one that works, and one that fails with a class and a message.
class TestStep final : public plan::Step {
public:
  TestStep(std::string id, std::vector<std::string_view> deps, bool fail, plan::Outputs outputs = {})
      : id_(std::move(id)), deps_(std::move(deps)), fail_(fail), outputs_(std::move(outputs)) {}
  std::string_view id() const override { return id_; }
  std::vector<std::string_view> depends_on() const override { return deps_; }
  ExitCode failure_code() const override { return ExitCode::kInstall; }
  plan::Description describe(const plan::StepContext&) const override { return {"test step", {}, true}; }
  plan::Outputs apply(const plan::StepContext&) override {
    if (fail_) throw Error(ExitCode::kInstall, "install.sh exited with status 3\nsecond line");
    return outputs_;
  }

private:
  std::string id_;
  std::vector<std::string_view> deps_;
  bool fail_;
  plan::Outputs outputs_;
};

// A datagram socket like systemd's notify socket, bound at `address` ('@' = abstract).
class NotifyListener {
public:
  explicit NotifyListener(const std::string& address) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd_);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, address.data(), address.size());
    if (address.front() == '@') sa.sun_path[0] = '\0';
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
    REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), len) == 0);
    ::setenv("NOTIFY_SOCKET", address.c_str(), 1);
  }
  ~NotifyListener() { ::unsetenv("NOTIFY_SOCKET"); }

  std::vector<std::string> drain() {
    std::vector<std::string> messages;
    pollfd p{fd_.get(), POLLIN, 0};
    while (::poll(&p, 1, 0) > 0) {
      char buf[4096];
      const auto n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n <= 0) break;
      messages.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return messages;
  }

private:
  sys::UniqueFd fd_;
};

struct Harness {
  TempDir dir;
  std::filesystem::path root = dir.path() / "root";
  config::Config config;
  sys::ProcessRunner runner;
  net::HttpClient http;
  std::atomic<bool> cancelled{false};

  Harness() {
    std::filesystem::create_directories(root / "dev");
    config.state_dir = "/var/lib/kasm-bootstrap";
    config.metrics_file = "/var/lib/node_exporter/textfile/kasm_bootstrap.prom";
    config.server_id = "1f3a5c7e";
  }

  plan::RunReport run(bool fail_install) {
    std::vector<std::unique_ptr<plan::Step>> steps;
    steps.push_back(std::make_unique<TestStep>("preflight", std::vector<std::string_view>{}, false));
    steps.push_back(
        std::make_unique<TestStep>("install-agent", std::vector<std::string_view>{"preflight"}, fail_install));
    steps.push_back(std::make_unique<TestStep>(std::string(steps::id::kVerifyHealth),
                                               std::vector<std::string_view>{"install-agent"}, false,
                                               plan::Outputs{{"health.kasm_agent", "ok"},
                                                             {"health.kasm_agent.latency_ms", "2.5"},
                                                             {"health.manager", "ok"},
                                                             {"health.manager.latency_ms", "40.0"}}));
    plan::Plan plan(std::move(steps));
    Machine machine{sys::RootFs(root), runner, http};
    plan::StateStore state(machine.fs, config.state_dir, config::fingerprint(config));
    plan::Executor executor(config, machine, state, cancelled);
    plan::StatusFileObserver status(machine.fs, config.state_dir);
    report::SdNotifyObserver notify;
    report::ConsoleObserver console(machine.fs, "/dev/console", config.server_id, status.path());
    report::MetricsFileObserver metrics(machine.fs, config.metrics_file);
    executor.add_observer(status);
    executor.add_observer(notify);
    executor.add_observer(console);
    executor.add_observer(metrics);
    return executor.run(plan, plan::ExecutorOptions{true, 1});
  }
};

// Prometheus text format, parsed strictly: every sample belongs to a family announced
// by HELP and TYPE, and, as node_exporter's textfile collector requires, no family is
// announced twice and no sample appears twice; returns "name{labels}" -> value.
std::map<std::string, double> parse_prometheus(const std::string& text) {
  std::map<std::string, double> samples;
  std::set<std::string> helped, typed;
  const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$)");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    INFO(line);
    if (line.rfind("# HELP ", 0) == 0) {
      CHECK(helped.insert(line.substr(7, line.find(' ', 7) - 7)).second);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      const auto name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(line.substr(line.rfind(' ') + 1) == "gauge");
      CHECK(typed.insert(name).second);
      continue;
    }
    std::smatch m;
    REQUIRE(std::regex_match(line, m, sample));
    CHECK(helped.count(m[1]));
    CHECK(typed.count(m[1]));
    CHECK(samples.emplace(m[1].str() + m[2].str(), std::stod(m[3])).second);
  }
  return samples;
}

} // namespace

TEST_CASE("report: sd_notify datagrams arrive in order with STATUS per step and READY=1 last", "[report]") {
  Harness h;
  NotifyListener listener((h.dir.path() / "notify.sock").string());
  const auto report = h.run(false);
  CHECK(report.success());
  const auto messages = listener.drain();
  const std::vector<std::string> expected{
      "STATUS=starting: 3 steps",         "STATUS=[1/3] preflight: running",
      "STATUS=[1/3] preflight: done",     "STATUS=[2/3] install-agent: running",
      "STATUS=[2/3] install-agent: done", "STATUS=[3/3] verify-health: running",
      "STATUS=[3/3] verify-health: done",
  };
  REQUIRE(messages.size() == expected.size() + 1);
  for (std::size_t i = 0; i < expected.size(); ++i)
    CHECK(messages[i] == expected[i]);
  CHECK(messages.back().rfind("READY=1\nSTATUS=kasm-bootstrap: success in ", 0) == 0);
}

TEST_CASE("report: a failed run says where on every channel", "[report]") {
  Harness h;
  NotifyListener listener("@kb-notify-test-" + std::to_string(::getpid()));
  const auto report = h.run(true);
  CHECK(report.exit_code == ExitCode::kInstall);
  const auto messages = listener.drain();
  REQUIRE(messages.size() >= 2);
  CHECK(messages[messages.size() - 2] ==
        "STATUS=[2/3] install-agent: failed: install.sh exited with status 3 second line");
  CHECK(messages.back() == "READY=1\nSTATUS=kasm-bootstrap: FAILED at install-agent (install): "
                           "install.sh exited with status 3 second line");

  // Status file: every step with outcome and duration, the error and the failed step.
  const auto status = nlohmann::json::parse(read_file(h.root / "var/lib/kasm-bootstrap/status.json"));
  CHECK(status["result"] == "failed");
  CHECK(status["failed_step"] == "install-agent");
  REQUIRE(status["steps"].size() == 3);
  CHECK(status["steps"][0]["outcome"] == "done");
  CHECK(status["steps"][0]["duration_ms"].is_number());
  CHECK(status["steps"][1]["outcome"] == "failed");
  CHECK(status["steps"][1]["exit_class"] == "install");
  CHECK(status["steps"][2]["outcome"] == "not-run");

  // Console: one line, the failing step, where to look.
  const auto console = read_file(h.root / "dev/console");
  CHECK(std::count(console.begin(), console.end(), '\n') == 1);
  CHECK(console.find("FAILED at step install-agent (install, exit 8): install.sh exited with status 3 second line "
                     "(details: /var/lib/kasm-bootstrap/status.json)") != std::string::npos);

  // Metrics: run failed, the failed step is 0, no health gauges from a step that never ran.
  const auto samples = parse_prometheus(read_file(h.root / "var/lib/node_exporter/textfile/kasm_bootstrap.prom"));
  CHECK(samples.at("kasm_bootstrap_run_success") == 0);
  CHECK(samples.at("kasm_bootstrap_run_exit_code") == 8);
  CHECK(samples.at("kasm_bootstrap_step_success{step=\"install-agent\"}") == 0);
  CHECK(samples.at("kasm_bootstrap_step_success{step=\"preflight\"}") == 1);
  CHECK(samples.count("kasm_bootstrap_healthy") == 0);
}

TEST_CASE("report: the metrics textfile of a successful run parses back", "[report]") {
  Harness h;
  const auto report = h.run(false);
  REQUIRE(report.success());
  const auto path = h.root / "var/lib/node_exporter/textfile/kasm_bootstrap.prom";
  const auto samples = parse_prometheus(read_file(path));
  CHECK(samples.at("kasm_bootstrap_run_success") == 1);
  CHECK(samples.at("kasm_bootstrap_run_exit_code") == 0);
  CHECK(samples.at("kasm_bootstrap_run_duration_seconds") >= 0);
  for (const char* step : {"preflight", "install-agent", "verify-health"}) {
    CHECK(samples.count("kasm_bootstrap_step_duration_seconds{step=\"" + std::string(step) + "\",outcome=\"done\"}"));
    CHECK(samples.at("kasm_bootstrap_step_success{step=\"" + std::string(step) + "\"}") == 1);
  }
  CHECK(samples.at("kasm_bootstrap_healthy") == 1);
  CHECK(samples.at("kasm_bootstrap_health_check_ok{check=\"kasm_agent\"}") == 1);
  CHECK(samples.at("kasm_bootstrap_health_check_latency_seconds{check=\"manager\"}") == Approx(0.040));
  CHECK(samples.at("kasm_bootstrap_run_timestamp_seconds") > 1.7e9);
  CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write | std::filesystem::perms::group_read |
         std::filesystem::perms::others_read));
  const auto console = read_file(h.root / "dev/console");
  CHECK(console.find("SUCCESS agent 1f3a5c7e ready in ") != std::string::npos);
}

TEST_CASE("report: label values are escaped and health-only metrics render", "[report]") {
  kasm::HealthReport health;
  health.checks.push_back({"we\"ird\\name\n", false, "x", 12});
  const auto text = report::render_metrics(nullptr, &health);
  CHECK(text.find(R"(kasm_bootstrap_health_check_ok{check="we\"ird\\name\n"} 0)") != std::string::npos);
  CHECK(text.find("kasm_bootstrap_healthy 0") != std::string::npos);
  CHECK(text.find("kasm_bootstrap_run_success") == std::string::npos);
}

TEST_CASE("report: journald fields per step and per run", "[report]") {
  plan::StepRecord failed{
      "install-agent", plan::Outcome::kFailed, 1234.4, "install.sh exited with status 3", ExitCode::kInstall, {}};
  const auto f = report::journal_fields(failed);
  const auto has = [&](const std::vector<std::string>& fields, const std::string& v) {
    return std::find(fields.begin(), fields.end(), v) != fields.end();
  };
  CHECK(has(f, "KASM_STEP=install-agent"));
  CHECK(has(f, "KASM_OUTCOME=failed"));
  CHECK(has(f, "KASM_DURATION_MS=1234"));
  CHECK(has(f, "KASM_EXIT_CLASS=install"));
  CHECK(has(f, "PRIORITY=3"));
  CHECK(has(f, "SYSLOG_IDENTIFIER=kasm-bootstrap"));
  CHECK(has(f, "MESSAGE=install-agent: failed in 1234 ms: install.sh exited with status 3"));

  plan::StepRecord done{"preflight", plan::Outcome::kDone, 5, "", ExitCode::kOk, {}};
  const auto d = report::journal_fields(done);
  CHECK(has(d, "PRIORITY=6"));
  CHECK(std::none_of(d.begin(), d.end(), [](const std::string& s) { return s.rfind("KASM_EXIT_CLASS=", 0) == 0; }));

  plan::RunReport run;
  run.exit_code = ExitCode::kInstall;
  run.failed_step = "install-agent";
  const auto r = report::journal_fields(run);
  CHECK(has(r, "KASM_RUN_RESULT=failed"));
  CHECK(has(r, "KASM_FAILED_STEP=install-agent"));
  CHECK(has(r, "KASM_EXIT_CODE=8"));
}

// `health` between runs (the health timer) keeps the textfile current: the health
// gauges and their time rewritten, what the run wrote about itself kept, every family
// once. First on the file a real run wrote, then through the binary.
TEST_CASE("report: health refreshes the run's textfile, healthy and unhealthy, keeping the run", "[report][health]") {
  Harness h;
  REQUIRE(h.run(false).success());
  const auto prom = h.root / "var/lib/node_exporter/textfile/kasm_bootstrap.prom";
  const sys::RootFs fs(h.root);
  const auto check_run_kept = [](const std::map<std::string, double>& samples) {
    CHECK(samples.at("kasm_bootstrap_run_success") == 1);
    CHECK(samples.at("kasm_bootstrap_run_exit_code") == 0);
    CHECK(samples.at("kasm_bootstrap_run_timestamp_seconds") > 1.7e9);
    CHECK(samples.at("kasm_bootstrap_step_success{step=\"install-agent\"}") == 1);
    CHECK(samples.count("kasm_bootstrap_step_duration_seconds{step=\"verify-health\",outcome=\"done\"}") == 1);
  };

  kasm::HealthReport unhealthy;
  unhealthy.checks = {{"kasm_agent", false, "exited (code 1)", 3}, {"manager", true, "ok", 20}};
  const auto at = std::chrono::system_clock::time_point(std::chrono::seconds(1'900'000'000));
  const auto written =
      report::refresh_health_metrics(fs, "/var/lib/node_exporter/textfile/kasm_bootstrap.prom", unhealthy, at);
  CHECK(read_file(prom) == written);
  auto samples = parse_prometheus(written);
  CHECK(samples.at("kasm_bootstrap_healthy") == 0);
  CHECK(samples.at("kasm_bootstrap_health_check_ok{check=\"kasm_agent\"}") == 0);
  CHECK(samples.at("kasm_bootstrap_health_check_ok{check=\"manager\"}") == 1);
  CHECK(samples.at("kasm_bootstrap_health_check_latency_seconds{check=\"manager\"}") == Approx(0.020));
  CHECK(samples.at("kasm_bootstrap_health_timestamp_seconds") == 1.9e9);
  CHECK(samples.count("kasm_bootstrap_info{version=\"" + std::string(kVersion) + "\"}") == 1);
  check_run_kept(samples);

  kasm::HealthReport healthy;
  healthy.checks = {{"kasm_agent", true, "running, healthy", 2}, {"manager", true, "ok", 20}};
  samples = parse_prometheus(report::refresh_health_metrics(fs, "/var/lib/node_exporter/textfile/kasm_bootstrap.prom",
                                                            healthy, at + std::chrono::seconds(60)));
  CHECK(samples.at("kasm_bootstrap_healthy") == 1);
  CHECK(samples.at("kasm_bootstrap_health_check_ok{check=\"kasm_agent\"}") == 1);
  CHECK(samples.at("kasm_bootstrap_health_timestamp_seconds") == 1.9e9 + 60);
  check_run_kept(samples);
  CHECK((std::filesystem::status(prom).permissions() & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write | std::filesystem::perms::group_read |
         std::filesystem::perms::others_read));

  SECTION("the health command rewrites it: unhealthy here (no Docker, nothing on the manager port)") {
    const auto r = run_binary({"health", "--root", h.root.string(), "--manager-address", "127.0.0.1", "--manager-port",
                               "9", "--block-container-metadata", "false", "--metrics-file",
                               "/var/lib/node_exporter/textfile/kasm_bootstrap.prom"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 10);
    const auto after = parse_prometheus(read_file(prom));
    CHECK(after.at("kasm_bootstrap_healthy") == 0);
    CHECK(after.at("kasm_bootstrap_health_check_ok{check=\"kasm_agent\"}") == 0);
    CHECK(after.at("kasm_bootstrap_health_check_ok{check=\"manager\"}") == 0);
    CHECK(after.at("kasm_bootstrap_health_timestamp_seconds") > 1.7e9);
    CHECK(after.at("kasm_bootstrap_health_timestamp_seconds") < 1.9e9); // now, not the earlier refresh
    check_run_kept(after);
  }
  SECTION("without a run's file the health part alone is written") {
    std::filesystem::remove(prom);
    samples = parse_prometheus(
        report::refresh_health_metrics(fs, "/var/lib/node_exporter/textfile/kasm_bootstrap.prom", healthy, at));
    CHECK(samples.at("kasm_bootstrap_healthy") == 1);
    CHECK(samples.count("kasm_bootstrap_run_success") == 0);
  }
}

// The healthy side through the binary, as docker_health_test.cpp runs `health`: a real
// Docker Engine with kasm_agent (healthy) and kasm_proxy running, a fake manager on HTTPS.
TEST_CASE("report: a healthy `health` writes kasm_bootstrap_healthy 1 beside the run's families",
          "[report][health][docker]") {
  KB_REQUIRE_DOCKER_WORLD();
  DockerWorld world;
  Harness h;
  REQUIRE(h.run(false).success());
  CertFactory pki{h.dir};
  const auto pair = pki.self_signed("manager", "127.0.0.1", "IP:127.0.0.1");
  h.dir.write("root/etc/kasm-bootstrap/manager-ca.pem", pair.cert);
  std::filesystem::create_directories(h.root / "var/run");
  world.link_socket_into(h.root);
  world.run_proxy();
  world.run_agent({"--health-cmd", "true", "--health-interval", "1s"});
  REQUIRE(world.wait_for("kasm_agent", "{{.State.Health.Status}}", "healthy"));
  FakeServer manager("fake_manager_health.py",
                     {"--cert", pki.path("manager.crt"), "--key", pki.path("manager.key"), "--mode", "ok"});

  const auto r = run_binary({"health", "--root", h.root.string(), "--manager-address",
                             "127.0.0.1:" + std::to_string(manager.port()), "--manager-ca",
                             "/etc/kasm-bootstrap/manager-ca.pem", "--metrics-file", h.config.metrics_file},
                            {{"KASM_BOOTSTRAP_BLOCK_CONTAINER_METADATA", "false"}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto samples = parse_prometheus(read_file(h.root / "var/lib/node_exporter/textfile/kasm_bootstrap.prom"));
  CHECK(samples.at("kasm_bootstrap_healthy") == 1);
  for (const char* check : {"kasm_agent", "kasm_proxy", "manager"})
    CHECK(samples.at("kasm_bootstrap_health_check_ok{check=\"" + std::string(check) + "\"}") == 1);
  CHECK(samples.at("kasm_bootstrap_health_timestamp_seconds") > 1.7e9);
  CHECK(samples.at("kasm_bootstrap_run_success") == 1);
  CHECK(samples.at("kasm_bootstrap_step_success{step=\"install-agent\"}") == 1);
}

// `kasm-bootstrap status`: each state of a status.json the real engine wrote (executor +
// StatusFileObserver under a temp root), read back by the real binary, with
// cloud-init's conventions: the "status:" line, --long, -o json, the exit code per
// state, and --wait until the run is over (no timing: the run is held until the waiting
// status has read the file).

#include "test_support.hpp"

#include "kasm_bootstrap/config/config.hpp"
#include "kasm_bootstrap/config/serialize.hpp"
#include "kasm_bootstrap/net/http_client.hpp"
#include "kasm_bootstrap/plan/executor.hpp"
#include "kasm_bootstrap/plan/observers.hpp"
#include "kasm_bootstrap/plan/state_store.hpp"
#include "kasm_bootstrap/system/machine.hpp"
#include "kasm_bootstrap/system/process.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"

#include <nlohmann/json.hpp>

#include <sys/inotify.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

using kb::test::TempDir;
namespace fs = std::filesystem;

namespace {

enum class ProbeMode { kSucceed, kFail, kWaitForRelease };

// One step that does what the case needs: succeed, fail, or hold the run open.
class StatusProbeStep final : public kb::plan::Step {
public:
  StatusProbeStep(std::string id, ProbeMode mode, bool required, std::atomic<bool>* release = nullptr)
      : id_(std::move(id)), mode_(mode), required_(required), release_(release) {}
  std::string_view id() const override { return id_; }
  kb::ExitCode failure_code() const override { return kb::ExitCode::kInstall; }
  bool required(const kb::config::Config&) const override { return required_; }
  kb::plan::Description describe(const kb::plan::StepContext&) const override { return {"probe " + id_, {}}; }
  kb::plan::Outputs apply(const kb::plan::StepContext&) override {
    if (mode_ == ProbeMode::kFail) throw kb::Error(kb::ExitCode::kInstall, id_ + " failed on purpose");
    if (mode_ == ProbeMode::kWaitForRelease)
      while (!release_->load())
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return {};
  }

private:
  std::string id_;
  ProbeMode mode_;
  bool required_;
  std::atomic<bool>* release_;
};

struct StatusWorld {
  TempDir root;
  kb::sys::ProcessRunner processes;
  kb::net::HttpClient http;
  kb::Machine machine{kb::sys::RootFs(root.path()), processes, http};
  kb::config::Config config;
  std::atomic<bool> cancelled{false};

  void run(std::vector<std::unique_ptr<kb::plan::Step>> steps) {
    kb::plan::Plan plan(std::move(steps));
    kb::plan::StateStore state(machine.fs, config.state_dir, kb::config::fingerprint(config));
    kb::plan::Executor executor(config, machine, state, cancelled);
    kb::plan::StatusFileObserver status(machine.fs, config.state_dir);
    executor.add_observer(status);
    executor.run(plan, {false, 4});
  }
  kb::test::RunResult status(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{"status", "--root", root.path().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return kb::test::run_binary(args);
  }
};

std::vector<std::unique_ptr<kb::plan::Step>> probe_steps(ProbeMode first, bool first_required,
                                                         std::atomic<bool>* release = nullptr) {
  std::vector<std::unique_ptr<kb::plan::Step>> v;
  v.push_back(std::make_unique<StatusProbeStep>("probe-one", first, first_required, release));
  v.push_back(std::make_unique<StatusProbeStep>("probe-two", ProbeMode::kSucceed, true));
  return v;
}

} // namespace

TEST_CASE("status: not started, done, degraded and error, each with its exit code", "[status][cli]") {
  StatusWorld w;
  {
    const auto r = w.status();
    CHECK(r.exit_code == 17);
    CHECK(r.out == "status: not started\n");
  }
  SECTION("done") {
    w.run(probe_steps(ProbeMode::kSucceed, true));
    const auto r = w.status();
    CHECK(r.exit_code == 0);
    CHECK(r.out == "status: done\n");
  }
  SECTION("degraded: a step that is not required failed") {
    w.run(probe_steps(ProbeMode::kFail, false));
    const auto r = w.status({"--long"});
    CHECK(r.exit_code == 2);
    CHECK(r.out.rfind("status: degraded done\n", 0) == 0);
    CHECK(r.out.find("probe-one") != std::string::npos);
    CHECK(r.out.find("failed on purpose") != std::string::npos);
  }
  SECTION("error, with the failed step in --long and the run's document in -o json") {
    w.run(probe_steps(ProbeMode::kFail, true));
    const auto r = w.status({"--long"});
    CHECK(r.exit_code == 1);
    CHECK(r.out.rfind("status: error\n", 0) == 0);
    CHECK(r.out.find("failed_step:  probe-one") != std::string::npos);
    const auto j = w.status({"-o", "json"});
    CHECK(j.exit_code == 1);
    const auto doc = nlohmann::json::parse(j.out);
    CHECK(doc["status"] == "error");
    CHECK(doc["schema_version"] == 1);
    CHECK(doc["run"]["failed_step"] == "probe-one");
    CHECK(doc["run"]["schema_version"] == 1);
  }
}

TEST_CASE("status: a live run is running, --wait returns when it ends, a dead one is an error", "[status][cli]") {
  StatusWorld w;
  std::atomic<bool> release{false};
  auto running =
      std::async(std::launch::async, [&] { w.run(probe_steps(ProbeMode::kWaitForRelease, true, &release)); });
  const auto status_file = w.root.path() / "var/lib/kasm-bootstrap/status.json";
  for (int i = 0; i < 500 && !fs::exists(status_file); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(fs::exists(status_file));
  {
    const auto r = w.status();
    CHECK(r.exit_code == 16);
    CHECK(r.out == "status: running\n");
  }
  // --wait: started while the run holds, answered once it ends. The run is released only
  // once the waiting status has opened status.json (inotify IN_OPEN on the state dir; the
  // run's own writes open temporary names), so it must have seen "running" and waited.
  const kb::sys::UniqueFd watch(::inotify_init1(IN_CLOEXEC));
  REQUIRE(watch);
  REQUIRE(::inotify_add_watch(watch.get(), status_file.parent_path().c_str(), IN_OPEN) >= 0);
  auto waiting = std::async(std::launch::async, [&] { return w.status({"--wait"}); });
  bool opened = false;
  alignas(inotify_event) char events[4096];
  while (!opened) {
    const ssize_t n = ::read(watch.get(), events, sizeof events); // blocks until an open
    REQUIRE(n > 0);
    for (ssize_t at = 0; at < n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(events + at);
      if (e->len > 0 && std::string(e->name) == "status.json") opened = true;
      at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
    }
  }
  release = true;
  running.get();
  const auto waited = waiting.get();
  CHECK(waited.exit_code == 0);
  CHECK(waited.out == "status: done\n");
  CHECK(waited.err.find("waiting for the run to finish") != std::string::npos);

  // A status left at "running" by a process that is gone (SIGKILL): an error that says so,
  // and status itself writes nothing.
  auto doc = nlohmann::json::parse(kb::test::read_file(status_file));
  doc["result"] = "running";
  doc["pid"] = 999999999; // above pid_max: no such process
  std::ofstream(status_file) << doc.dump();
  const auto before = kb::test::read_file(status_file);
  const auto r = w.status({"--long"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("is gone") != std::string::npos);
  CHECK(kb::test::read_file(status_file) == before);
}

TEST_CASE("status: a status file that is not one is a state error naming it", "[status][cli][hostile]") {
  StatusWorld w;
  w.root.write("var/lib/kasm-bootstrap/status.json", "[1, 2");
  const auto r = w.status();
  CHECK(r.exit_code == 13);
  CHECK(r.err.find("status.json is not a status file") != std::string::npos);
}

// The plan engine: graph validation, ordering, concurrency, failure handling, the state
// file (resume, no-op re-run, --force, configuration change) and interruption. Steps here
// are small real steps that write real files under a temporary root.

#include "kasm_bootstrap/config/serialize.hpp"
#include "kasm_bootstrap/plan/executor.hpp"
#include "kasm_bootstrap/plan/observers.hpp"
#include "test_support.hpp"

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <fstream>
#include <thread>

using namespace kb;
using kb::test::TempDir;

namespace {

// Records every event so tests can assert on order.
struct Journal {
  std::mutex mutex;
  std::vector<std::string> events;
  void add(const std::string& e) {
    std::lock_guard lock(mutex);
    events.push_back(e);
  }
  std::ptrdiff_t index(const std::string& e) {
    std::lock_guard lock(mutex);
    auto it = std::find(events.begin(), events.end(), e);
    return it == events.end() ? -1 : it - events.begin();
  }
};

// Lets two steps prove they overlap: each arrives, then waits (bounded) for the other.
struct Rendezvous {
  std::mutex mutex;
  std::condition_variable cv;
  int arrived = 0;
  bool meet(int expected) {
    std::unique_lock lock(mutex);
    ++arrived;
    cv.notify_all();
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return arrived >= expected; });
  }
};

class FileStep : public plan::Step {
public:
  FileStep(std::string id, std::vector<std::string> deps, Journal& journal)
      : id_(std::move(id)), deps_(std::move(deps)), journal_(journal) {}
  std::string_view id() const override { return id_; }
  std::vector<std::string_view> depends_on() const override { return {deps_.begin(), deps_.end()}; }
  ExitCode failure_code() const override { return ExitCode::kInstall; }
  bool required(const config::Config&) const override { return required_; }
  plan::Description describe(const plan::StepContext&) const override {
    return {"write /" + id_, {{"write", "/" + id_, "mode 0644"}}};
  }
  plan::Outputs apply(const plan::StepContext& ctx) override {
    ++applied;
    journal_.add("start " + id_);
    if (rendezvous && !rendezvous->meet(rendezvous_count)) throw std::runtime_error("peer never started");
    if (fail_next) {
      fail_next = false;
      journal_.add("fail " + id_);
      throw Error(ExitCode::kInstall, id_ + " failed on purpose");
    }
    if (wait_for_cancel)
      while (!ctx.cancelled.load())
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!input_key.empty()) seen_input = ctx.facts.get(input_key).value_or("<missing>");
    ctx.machine.fs.write_file_atomic("/" + id_, id_, 0644);
    journal_.add("end " + id_);
    return {{id_ + "_out", "value-of-" + id_}};
  }

  std::string id_;
  std::vector<std::string> deps_;
  Journal& journal_;
  int applied = 0;
  bool fail_next = false;
  bool required_ = true;
  bool wait_for_cancel = false;
  Rendezvous* rendezvous = nullptr;
  int rendezvous_count = 0;
  std::string input_key;
  std::string seen_input;
};

struct World {
  TempDir root;
  sys::ProcessRunner processes;
  net::HttpClient http;
  Machine machine{sys::RootFs(root.path()), processes, http};
  config::Config config;
  Journal journal;
  std::atomic<bool> cancelled{false};

  // a -> {b, c} -> d
  std::vector<FileStep*> steps;
  plan::Plan make_plan() {
    steps.clear();
    std::vector<std::unique_ptr<plan::Step>> v;
    auto add = [&](std::string id, std::vector<std::string> deps) {
      auto s = std::make_unique<FileStep>(id, deps, journal);
      steps.push_back(s.get());
      v.push_back(std::move(s));
    };
    add("a", {});
    add("b", {"a"});
    add("c", {"a"});
    add("d", {"b", "c"});
    return plan::Plan(std::move(v));
  }
  FileStep& step(const std::string& id) {
    for (auto* s : steps)
      if (s->id_ == id) return *s;
    throw std::logic_error(id);
  }
  plan::RunReport run(plan::Plan& plan, bool force = false) {
    plan::StateStore state(machine.fs, config.state_dir, config::fingerprint(config));
    state.load();
    if (force) state.forget_all();
    plan::Executor executor(config, machine, state, cancelled);
    plan::StatusFileObserver status(machine.fs, config.state_dir);
    executor.add_observer(status);
    return executor.run(plan, {force, 4});
  }
  nlohmann::json status_file() {
    return nlohmann::json::parse(test::read_file(root.path() / "var/lib/kasm-bootstrap/status.json"));
  }
};

} // namespace

TEST_CASE("a plan with a cycle or an unknown dependency is refused", "[plan]") {
  Journal j;
  std::vector<std::unique_ptr<plan::Step>> cyclic;
  cyclic.push_back(std::make_unique<FileStep>("x", std::vector<std::string>{"y"}, j));
  cyclic.push_back(std::make_unique<FileStep>("y", std::vector<std::string>{"x"}, j));
  CHECK_THROWS_WITH(plan::Plan(std::move(cyclic)), "plan has a dependency cycle");

  std::vector<std::unique_ptr<plan::Step>> dangling;
  dangling.push_back(std::make_unique<FileStep>("x", std::vector<std::string>{"nope"}, j));
  CHECK_THROWS_WITH(plan::Plan(std::move(dangling)), "step x depends on unknown step nope");
}

TEST_CASE("dependencies run first and independent steps run concurrently", "[plan]") {
  World w;
  auto plan = w.make_plan();
  Rendezvous both_middle_steps;
  w.step("b").rendezvous = &both_middle_steps;
  w.step("c").rendezvous = &both_middle_steps;
  w.step("b").rendezvous_count = w.step("c").rendezvous_count = 2;
  w.step("d").input_key = "b_out";

  const auto report = w.run(plan);
  REQUIRE(report.success());
  // b and c met inside apply(): each waited for the other, so they overlapped.
  CHECK(w.journal.index("end a") < w.journal.index("start b"));
  CHECK(w.journal.index("end a") < w.journal.index("start c"));
  CHECK(w.journal.index("end b") < w.journal.index("start d"));
  CHECK(w.journal.index("end c") < w.journal.index("start d"));
  CHECK(w.step("d").seen_input == "value-of-b");
  for (const char* f : {"a", "b", "c", "d"})
    CHECK(test::read_file(w.root.path() / f) == f);
  CHECK(w.status_file()["result"] == "success");
}

TEST_CASE("a failed required step stops its dependents and names itself everywhere", "[plan]") {
  World w;
  auto plan = w.make_plan();
  w.step("b").fail_next = true;
  const auto report = w.run(plan);
  CHECK(report.exit_code == ExitCode::kInstall);
  CHECK(report.failed_step == "b");
  CHECK(report.steps.back().outcome == plan::Outcome::kNotRun);
  CHECK(w.step("d").applied == 0);
  const auto status = w.status_file();
  CHECK(status["result"] == "failed");
  CHECK(status["failed_step"] == "b");
  CHECK(status["steps"][1]["outcome"] == "failed");
  CHECK(status["steps"][1]["message"] == "b failed on purpose");
  CHECK(status["steps"][3]["outcome"] == "not-run");
}

TEST_CASE("a step that is not required only warns", "[plan]") {
  World w;
  auto plan = w.make_plan();
  w.step("c").fail_next = true;
  w.step("c").required_ = false;
  const auto report = w.run(plan);
  CHECK(report.success());
  CHECK(report.steps[2].outcome == plan::Outcome::kWarning);
  CHECK(w.step("d").applied == 1);
}

TEST_CASE("the state file resumes an interrupted run and makes a finished run a no-op", "[plan][state]") {
  World w;
  auto plan = w.make_plan();
  w.step("d").fail_next = true;
  REQUIRE_FALSE(w.run(plan).success());

  SECTION("resume: only what did not finish runs again, and earlier outputs are restored") {
    auto again = w.make_plan();
    w.step("d").input_key = "c_out";
    const auto report = w.run(again);
    REQUIRE(report.success());
    CHECK(w.step("a").applied == 0);
    CHECK(w.step("b").applied == 0);
    CHECK(w.step("c").applied == 0);
    CHECK(w.step("d").applied == 1);
    CHECK(report.steps[0].outcome == plan::Outcome::kResumed);
    CHECK(w.step("d").seen_input == "value-of-c");

    auto third = w.make_plan();
    CHECK(w.run(third).success());
    for (auto* s : w.steps)
      CHECK(s->applied == 0);
  }
  SECTION("--force re-applies everything") {
    auto again = w.make_plan();
    REQUIRE(w.run(again, /*force=*/true).success());
    for (auto* s : w.steps)
      CHECK(s->applied == 1);
  }
  SECTION("a changed configuration starts over") {
    w.config.server_id = "another-server";
    auto again = w.make_plan();
    REQUIRE(w.run(again).success());
    for (auto* s : w.steps)
      CHECK(s->applied == 1);
  }
  SECTION("a damaged state file is ignored, not fatal") {
    std::ofstream(w.root.path() / "var/lib/kasm-bootstrap/state.json") << "{not json";
    auto again = w.make_plan();
    REQUIRE(w.run(again).success());
    CHECK(w.step("a").applied == 1);
  }
}

TEST_CASE("an interrupt stops new steps and is reported as interrupted", "[plan]") {
  World w;
  auto plan = w.make_plan();
  w.step("b").wait_for_cancel = true;
  std::thread interrupter([&] {
    while (w.journal.index("start b") < 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    w.cancelled = true;
  });
  const auto report = w.run(plan);
  interrupter.join();
  CHECK(report.exit_code == ExitCode::kInterrupted);
  CHECK(report.interrupted);
  CHECK(w.step("d").applied == 0);
  CHECK(report.steps[3].outcome == plan::Outcome::kNotRun);
  CHECK(w.status_file()["exit_class"] == "interrupted");
}

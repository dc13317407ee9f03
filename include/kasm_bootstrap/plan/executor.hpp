#pragma once
// Runs a plan: steps whose dependencies are met run concurrently (up to max_parallel),
// completed steps recorded in the state file are skipped, a failed required step stops
// new steps from starting (running ones finish), and observers hear every transition.

#include "kasm_bootstrap/plan/plan.hpp"
#include "kasm_bootstrap/plan/state_store.hpp"

#include <chrono>
#include <nlohmann/json.hpp>

namespace kb::plan {

enum class Outcome {
  kPending,
  kRunning,
  kDone,      // applied now
  kResumed,   // recorded as done by an earlier run
  kSatisfied, // check() found the work already in place
  kWarning,   // failed, but the step is not required
  kFailed,
  kNotRun, // a dependency failed, or the run was interrupted
};
std::string_view outcome_name(Outcome outcome);

struct StepRecord {
  std::string id;
  Outcome outcome = Outcome::kPending;
  double duration_ms = 0;
  std::string message; // error or reason, already redacted
  ExitCode failure_code = ExitCode::kOk;
  Outputs outputs;
};

struct RunReport {
  std::vector<StepRecord> steps; // in plan order
  ExitCode exit_code = ExitCode::kOk;
  std::string failed_step; // first required step that failed
  std::string failure_message;
  double duration_ms = 0;
  bool interrupted = false;
  bool success() const { return exit_code == ExitCode::kOk; }
};

nlohmann::json to_json(const StepRecord& record);
nlohmann::json to_json(const RunReport& report);

class Observer {
public:
  virtual ~Observer() = default;
  virtual void on_run_started(const Plan&) {}
  virtual void on_step_started(const Step&) {}
  virtual void on_step_finished(const StepRecord&) {}
  virtual void on_run_finished(const RunReport&) {}
};

struct ExecutorOptions {
  bool force = false; // ignore the state file and re-apply every step
  unsigned max_parallel = 4;
};

class Executor {
public:
  Executor(const config::Config& config, Machine& machine, StateStore& state, const std::atomic<bool>& cancelled);
  void add_observer(Observer& observer) { observers_.push_back(&observer); }
  RunReport run(Plan& plan, const ExecutorOptions& options);
  const Facts& facts() const { return facts_; }

private:
  StepRecord run_one(Step& step, const ExecutorOptions& options);

  const config::Config& config_;
  Machine& machine_;
  StateStore& state_;
  const std::atomic<bool>& cancelled_;
  Facts facts_;
  std::vector<Observer*> observers_;
};

} // namespace kb::plan

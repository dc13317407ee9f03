#include "kasm_bootstrap/plan/executor.hpp"

#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/util/redactor.hpp"

#include <condition_variable>
#include <deque>
#include <map>
#include <thread>

namespace kb::plan {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

bool lets_dependents_run(Outcome o) {
  return o == Outcome::kDone || o == Outcome::kResumed || o == Outcome::kSatisfied || o == Outcome::kWarning;
}

} // namespace

std::string_view outcome_name(Outcome outcome) {
  switch (outcome) {
  case Outcome::kPending: return "pending";
  case Outcome::kRunning: return "running";
  case Outcome::kDone: return "done";
  case Outcome::kResumed: return "resumed";
  case Outcome::kSatisfied: return "satisfied";
  case Outcome::kWarning: return "warning";
  case Outcome::kFailed: return "failed";
  case Outcome::kNotRun: return "not-run";
  }
  return "unknown";
}

nlohmann::json to_json(const StepRecord& r) {
  nlohmann::json j{{"id", r.id}, {"outcome", outcome_name(r.outcome)}, {"duration_ms", r.duration_ms}};
  if (!r.message.empty()) j["message"] = r.message;
  if (r.outcome == Outcome::kFailed || r.outcome == Outcome::kWarning) j["exit_class"] = exit_code_name(r.failure_code);
  if (!r.outputs.empty()) j["outputs"] = r.outputs;
  return j;
}

nlohmann::json to_json(const RunReport& report) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : report.steps)
    steps.push_back(to_json(s));
  nlohmann::json j{{"result", report.success() ? "success" : "failed"},
                   {"exit_code", static_cast<int>(report.exit_code)},
                   {"exit_class", exit_code_name(report.exit_code)},
                   {"duration_ms", report.duration_ms},
                   {"steps", steps}};
  if (!report.failed_step.empty()) j["failed_step"] = report.failed_step;
  if (!report.failure_message.empty()) j["error"] = report.failure_message;
  if (report.interrupted) j["interrupted"] = true;
  return j;
}

Executor::Executor(const config::Config& config, Machine& machine, StateStore& state,
                   const std::atomic<bool>& cancelled)
    : config_(config), machine_(machine), state_(state), cancelled_(cancelled) {}

StepRecord Executor::run_one(Step& step, const ExecutorOptions& options) {
  StepRecord record;
  record.id = std::string(step.id());
  const auto start = Clock::now();
  const StepContext context{config_, machine_, facts_, cancelled_};
  try {
    if (auto previous = options.force ? std::nullopt : state_.completed(step.id())) {
      record.outcome = Outcome::kResumed;
      record.outputs = *previous;
      record.message = "completed by an earlier run";
    } else if (auto existing = step.check(context)) {
      record.outcome = Outcome::kSatisfied;
      record.outputs = *existing;
      record.message = "already in place";
    } else {
      record.outputs = step.apply(context);
      record.outcome = Outcome::kDone;
    }
  } catch (const Error& e) {
    record.outcome = Outcome::kFailed;
    record.failure_code = e.code();
    record.message = scrub(e.what());
  } catch (const std::exception& e) {
    record.outcome = Outcome::kFailed;
    record.failure_code = step.failure_code();
    record.message = scrub(e.what());
  }
  if (record.outcome == Outcome::kFailed && cancelled_.load()) record.failure_code = ExitCode::kInterrupted;
  if (record.outcome == Outcome::kFailed && !step.required(config_)) record.outcome = Outcome::kWarning;
  record.duration_ms = ms_since(start);
  if (record.outcome == Outcome::kDone || record.outcome == Outcome::kSatisfied) {
    try {
      state_.record_completed(step.id(), record.outputs, record.duration_ms);
    } catch (const std::exception& e) {
      // The work is done; only resuming is affected. Say so, but do not fail the step.
      log::warn("{}: could not record progress in the state file: {}", step.id(), e.what());
    }
  }
  return record;
}

RunReport Executor::run(Plan& plan, const ExecutorOptions& options) {
  const auto run_start = Clock::now();
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string_view, StepRecord> records;
  std::map<std::string_view, std::size_t> waiting_on;
  std::deque<Step*> ready;
  std::vector<std::jthread> workers;
  unsigned running = 0;
  bool stop_launching = false;
  RunReport report;

  for (auto& o : observers_)
    o->on_run_started(plan);
  for (Step* s : plan.order()) {
    records[s->id()].id = std::string(s->id());
    waiting_on[s->id()] = s->depends_on().size();
    if (s->depends_on().empty()) ready.push_back(s);
  }

  std::unique_lock lock(mutex);
  for (;;) {
    if (cancelled_.load() && !stop_launching) {
      stop_launching = true;
      report.interrupted = true;
    }
    while (!stop_launching && !ready.empty() && running < std::max(1u, options.max_parallel)) {
      Step* step = ready.front();
      ready.pop_front();
      ++running;
      records[step->id()].outcome = Outcome::kRunning;
      for (auto& o : observers_)
        o->on_step_started(*step);
      workers.emplace_back([&, step] {
        StepRecord record = run_one(*step, options);
        std::lock_guard guard(mutex);
        if (lets_dependents_run(record.outcome)) {
          facts_.merge(record.outputs);
          for (Step* dependent : plan.order()) {
            auto deps = dependent->depends_on();
            if (std::find(deps.begin(), deps.end(), step->id()) != deps.end() && --waiting_on[dependent->id()] == 0)
              ready.push_back(dependent);
          }
        } else if (report.failed_step.empty()) {
          stop_launching = true;
          report.failed_step = record.id;
          report.failure_message = record.message;
          report.exit_code = record.failure_code;
        }
        for (auto& o : observers_)
          o->on_step_finished(record);
        records[step->id()] = std::move(record);
        --running;
        changed.notify_all();
      });
    }
    if (running == 0 && (stop_launching || ready.empty())) break;
    // Wake at least every 200 ms to notice an interrupt that arrives with nothing finishing.
    changed.wait_for(lock, std::chrono::milliseconds(200));
  }
  lock.unlock();
  workers.clear(); // joins

  for (Step* s : plan.order()) {
    StepRecord& r = records[s->id()];
    if (r.outcome == Outcome::kPending) {
      r.outcome = Outcome::kNotRun;
      r.message =
          report.interrupted ? "run interrupted before this step" : "blocked by failed step " + report.failed_step;
      // An interrupt that lands between steps fails none of them: name the first step it
      // kept from running, so the console line and sd_notify still say where the run stopped.
      if (report.interrupted && report.failed_step.empty()) {
        report.failed_step = r.id;
        report.failure_message = "interrupted before " + r.id + " started";
      }
    }
    report.steps.push_back(r);
  }
  if (report.interrupted && report.exit_code == ExitCode::kOk) {
    report.exit_code = ExitCode::kInterrupted;
    if (report.failure_message.empty()) report.failure_message = "interrupted";
  }
  if (report.interrupted) report.exit_code = ExitCode::kInterrupted;
  report.duration_ms = ms_since(run_start);
  for (auto& o : observers_)
    o->on_run_finished(report);
  return report;
}

} // namespace kb::plan

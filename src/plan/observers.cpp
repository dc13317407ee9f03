#include "kasm_bootstrap/plan/observers.hpp"

#include "kasm_bootstrap/system/process.hpp"
#include "kasm_bootstrap/util/json_text.hpp"
#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/util/redactor.hpp"
#include "kasm_bootstrap/util/utc_time.hpp"
#include "kasm_bootstrap/version.hpp"

#include <unistd.h>

namespace kb::plan {

void LogObserver::on_step_started(const Step& step) { log::info("{}: started", step.id()); }

void LogObserver::on_step_finished(const StepRecord& r) {
  switch (r.outcome) {
  case Outcome::kFailed:
    log::error("{}: FAILED after {:.0f} ms ({}): {}", r.id, r.duration_ms, exit_code_name(r.failure_code), r.message);
    break;
  case Outcome::kWarning:
    log::warn("{}: failed after {:.0f} ms, continuing (not required): {}", r.id, r.duration_ms, r.message);
    break;
  default:
    log::info("{}: {} in {:.0f} ms{}{}", r.id, outcome_name(r.outcome), r.duration_ms, r.message.empty() ? "" : ": ",
              r.message);
  }
}

void LogObserver::on_run_finished(const RunReport& report) {
  if (report.success())
    log::info("run finished successfully in {:.0f} ms", report.duration_ms);
  else
    log::error("run failed at step {} ({}) after {:.0f} ms", report.failed_step.empty() ? "-" : report.failed_step,
               exit_code_name(report.exit_code), report.duration_ms);
}

StatusFileObserver::StatusFileObserver(const sys::RootFs& fs, std::filesystem::path state_dir)
    : fs_(fs), state_dir_(std::move(state_dir)) {}

void StatusFileObserver::on_run_started(const Plan& plan) {
  std::lock_guard lock(mutex_);
  doc_ = {{"schema_version", kSchemaVersion},
          {"version", kVersion},
          {"result", "running"},
          {"started_at", util::utc_timestamp()},
          {"pid", ::getpid()}};
  // With the pid, names this process for good: `status` tells a live run from a pid reused.
  if (const auto start = sys::process_start_time(::getpid())) doc_["pid_start_ticks"] = *start;
  doc_["steps"] = nlohmann::json::array();
  for (const Step* s : plan.order())
    doc_["steps"].push_back({{"id", s->id()}, {"outcome", "pending"}});
  write_locked(sys::Durability::kAtomicOnly);
}

void StatusFileObserver::on_step_started(const Step& step) {
  std::lock_guard lock(mutex_);
  for (auto& s : doc_["steps"])
    if (s["id"] == step.id()) {
      s["outcome"] = "running";
      s["started_at"] = util::utc_timestamp();
    }
  write_locked(sys::Durability::kAtomicOnly);
}

void StatusFileObserver::on_step_finished(const StepRecord& record) {
  std::lock_guard lock(mutex_);
  for (auto& s : doc_["steps"])
    if (s["id"] == record.id) {
      const auto started = s.value("started_at", std::string());
      s = to_json(record);
      if (!started.empty()) s["started_at"] = started;
      s["finished_at"] = util::utc_timestamp();
    }
  write_locked(sys::Durability::kAtomicOnly);
}

void StatusFileObserver::on_run_finished(const RunReport& report) {
  std::lock_guard lock(mutex_);
  auto steps = doc_["steps"];
  const auto summary = to_json(report);
  for (const auto& [k, v] : summary.items())
    if (k != "steps") doc_[k] = v;
  // Keep per-step timestamps; take the final outcome of steps that never started.
  for (std::size_t i = 0; i < steps.size() && i < summary["steps"].size(); ++i)
    if (steps[i]["outcome"] == "pending") steps[i] = summary["steps"][i];
  doc_["steps"] = steps;
  doc_["finished_at"] = util::utc_timestamp();
  write_locked();
}

void StatusFileObserver::write_locked(sys::Durability durability) {
  try {
    fs_.create_directories(state_dir_, 0700);
    fs_.write_file_atomic(path(), scrub(util::dump_json(doc_, 2)) + "\n", 0644, std::nullopt, durability);
  } catch (const std::exception& e) {
    log::warn("cannot write status file {}: {}", path().string(), e.what());
  }
}

std::optional<std::string> mark_stale_status_interrupted(const sys::RootFs& fs,
                                                         const std::filesystem::path& state_dir) {
  const auto path = state_dir / StatusFileObserver::kStatusFile;
  std::optional<std::string> text;
  try {
    text = fs.read_file(path, 1u << 20);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (!text || util::json_too_deep(*text)) return std::nullopt;
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (!doc.is_object() || doc.value("result", "") != "running") return std::nullopt;
  const auto pid = doc.value("pid", 0);
  doc["result"] = "interrupted";
  doc["finished_at"] = util::utc_timestamp();
  doc["error"] = "the run (pid " + std::to_string(pid) + ") ended without finishing: killed, or the machine stopped";
  if (doc.contains("steps") && doc["steps"].is_array())
    for (auto& s : doc["steps"])
      if (s.is_object() && s.value("outcome", "") == "running") s["outcome"] = "interrupted";
  try {
    fs.write_file_atomic(path, scrub(util::dump_json(doc, 2)) + "\n", 0644);
  } catch (const std::exception& e) {
    return "status.json says a run (pid " + std::to_string(pid) +
           ") is running, and it cannot be corrected: " + e.what();
  }
  return "the previous run (pid " + std::to_string(pid) + ", started " + doc.value("started_at", "?") +
         ") ended without finishing; its status.json now says interrupted";
}

} // namespace kb::plan

#pragma once
// Observers that come with the engine: progress in the log, and the status file
// (<state_dir>/status.json) that says, at any moment, which steps ran, how long they
// took and which one failed. Both go through the redactor.

#include "kasm_bootstrap/plan/executor.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"

#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>

namespace kb::plan {

class LogObserver final : public Observer {
public:
  void on_step_started(const Step& step) override;
  void on_step_finished(const StepRecord& record) override;
  void on_run_finished(const RunReport& report) override;
};

class StatusFileObserver final : public Observer {
public:
  StatusFileObserver(const sys::RootFs& fs, std::filesystem::path state_dir);
  void on_run_started(const Plan& plan) override;
  void on_step_started(const Step& step) override;
  void on_step_finished(const StepRecord& record) override;
  void on_run_finished(const RunReport& report) override;

  std::filesystem::path path() const { return state_dir_ / kStatusFile; }
  static constexpr const char* kStatusFile = "status.json";

private:
  // Snapshots while steps run are only atomic; the final one is also durable.
  void write_locked(sys::Durability durability = sys::Durability::kDurable);

  const sys::RootFs& fs_;
  std::filesystem::path state_dir_;
  std::mutex mutex_;
  nlohmann::json doc_;
};

// A status.json left at "running" by a run that is gone (SIGKILL, power loss) becomes
// "interrupted", its running steps too. Only under the run lock, where no run is live.
// Returns what it found, for the log; nullopt when the status was not stale.
std::optional<std::string> mark_stale_status_interrupted(const sys::RootFs& fs, const std::filesystem::path& state_dir);

} // namespace kb::plan

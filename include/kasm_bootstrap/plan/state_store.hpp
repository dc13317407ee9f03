#pragma once
// The state file (<state_dir>/state.json): which steps finished, with their outputs, for
// the configuration fingerprint they ran with. A re-run skips recorded steps; a run
// with a different configuration starts over. Written atomically after every step.

#include "kasm_bootstrap/plan/step.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

namespace kb::plan {

class StateStore {
public:
  StateStore(const sys::RootFs& fs, std::filesystem::path state_dir, std::string fingerprint);

  // Reads the file. Returns a warning to log when it was unreadable or for another
  // configuration (then it is ignored, not deleted, until the first step rewrites it).
  std::optional<std::string> load();
  std::optional<Outputs> completed(std::string_view step_id) const;
  void record_completed(std::string_view step_id, const Outputs& outputs, double duration_ms);
  void forget_all(); // --force

  std::filesystem::path path() const { return state_dir_ / "state.json"; }

private:
  void save_locked() const;

  const sys::RootFs& fs_;
  std::filesystem::path state_dir_;
  std::string fingerprint_;
  mutable std::mutex mutex_;
  std::map<std::string, Outputs, std::less<>> completed_;
  std::map<std::string, double, std::less<>> durations_;
};

} // namespace kb::plan

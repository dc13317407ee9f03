#include "kasm_bootstrap/plan/state_store.hpp"

#include "kasm_bootstrap/util/json_text.hpp"
#include "kasm_bootstrap/util/redactor.hpp"

#include <nlohmann/json.hpp>

namespace kb::plan {

namespace {
constexpr int kStateVersion = 1;
}

StateStore::StateStore(const sys::RootFs& fs, std::filesystem::path state_dir, std::string fingerprint)
    : fs_(fs), state_dir_(std::move(state_dir)), fingerprint_(std::move(fingerprint)) {}

std::optional<std::string> StateStore::load() {
  std::lock_guard lock(mutex_);
  completed_.clear();
  std::optional<std::string> text;
  try {
    text = fs_.read_file(path());
  } catch (const std::exception& e) {
    return std::string("ignoring unreadable state file: ") + e.what();
  }
  if (!text) return std::nullopt;
  const auto doc = util::json_too_deep(*text) ? nlohmann::json(nlohmann::json::value_t::discarded)
                                              : nlohmann::json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("steps"))
    return "ignoring damaged state file " + path().string() + "; starting over";
  if (doc.value("version", 0) != kStateVersion || doc.value("config_fingerprint", "") != fingerprint_)
    return "configuration changed since the last run; starting over instead of resuming";
  try {
    for (const auto& [id, entry] : doc["steps"].items()) {
      completed_[id] = entry.value("outputs", Outputs{});
      durations_[id] = entry.value("duration_ms", 0.0);
    }
  } catch (const nlohmann::json::exception&) {
    completed_.clear();
    return "ignoring damaged state file " + path().string() + "; starting over";
  }
  return std::nullopt;
}

std::optional<Outputs> StateStore::completed(std::string_view step_id) const {
  std::lock_guard lock(mutex_);
  auto it = completed_.find(step_id);
  if (it == completed_.end()) return std::nullopt;
  return it->second;
}

void StateStore::record_completed(std::string_view step_id, const Outputs& outputs, double duration_ms) {
  std::lock_guard lock(mutex_);
  completed_[std::string(step_id)] = outputs;
  durations_[std::string(step_id)] = duration_ms;
  save_locked();
}

void StateStore::forget_all() {
  std::lock_guard lock(mutex_);
  completed_.clear();
  durations_.clear();
}

void StateStore::save_locked() const {
  nlohmann::json doc;
  doc["version"] = kStateVersion;
  doc["config_fingerprint"] = fingerprint_;
  doc["steps"] = nlohmann::json::object();
  for (const auto& [id, outputs] : completed_)
    doc["steps"][id] = {{"outputs", outputs}, {"duration_ms", durations_.at(id)}};
  fs_.create_directories(state_dir_, 0700);
  fs_.write_file_atomic(path(), scrub(util::dump_json(doc, 2)) + "\n", 0600);
}

} // namespace kb::plan

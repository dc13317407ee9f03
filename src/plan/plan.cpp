#include "kasm_bootstrap/plan/plan.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace kb::plan {

void Facts::merge(const Outputs& outputs) {
  std::lock_guard lock(mutex_);
  for (const auto& [k, v] : outputs)
    values_[k] = v;
}

std::optional<std::string> Facts::get(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

Outputs Facts::snapshot() const {
  std::lock_guard lock(mutex_);
  return values_;
}

Plan::Plan(std::vector<std::unique_ptr<Step>> steps) : steps_(std::move(steps)) {
  std::map<std::string_view, Step*> by_id;
  for (auto& s : steps_)
    if (!by_id.emplace(s->id(), s.get()).second)
      throw Error(ExitCode::kInternal, "plan has two steps named " + std::string(s->id()));
  for (auto& s : steps_)
    for (auto dep : s->depends_on())
      if (!by_id.count(dep))
        throw Error(ExitCode::kInternal,
                    "step " + std::string(s->id()) + " depends on unknown step " + std::string(dep));

  // Kahn's algorithm, always taking the earliest-inserted ready step.
  std::set<std::string_view> placed;
  while (order_.size() < steps_.size()) {
    Step* next = nullptr;
    for (auto& s : steps_) {
      if (placed.count(s->id())) continue;
      const auto deps = s->depends_on();
      if (std::all_of(deps.begin(), deps.end(), [&](auto d) { return placed.count(d) > 0; })) {
        next = s.get();
        break;
      }
    }
    if (!next) throw Error(ExitCode::kInternal, "plan has a dependency cycle");
    placed.insert(next->id());
    order_.push_back(next);
  }
}

Step* Plan::find(std::string_view id) const {
  for (const auto& s : steps_)
    if (s->id() == id) return s.get();
  return nullptr;
}

} // namespace kb::plan

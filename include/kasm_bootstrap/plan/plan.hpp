#pragma once
// The plan: steps plus their dependency graph, validated when built (unknown
// dependency or cycle -> kb::Error), and a topological order for describing them.

#include "kasm_bootstrap/plan/step.hpp"

#include <memory>
#include <vector>

namespace kb::plan {

class Plan {
public:
  explicit Plan(std::vector<std::unique_ptr<Step>> steps);

  // Dependencies before dependents; ties keep insertion order, so output is stable.
  const std::vector<Step*>& order() const { return order_; }
  Step* find(std::string_view id) const;
  std::size_t size() const { return steps_.size(); }

private:
  std::vector<std::unique_ptr<Step>> steps_;
  std::vector<Step*> order_;
};

} // namespace kb::plan

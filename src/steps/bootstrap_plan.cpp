#include "kasm_bootstrap/steps/steps.hpp"

// The bootstrap plan: which steps, in which order of insertion (ties in the graph keep it).
namespace kb::steps {

plan::Plan build_bootstrap_plan() {
  std::vector<std::unique_ptr<plan::Step>> steps;
  steps.push_back(make_preflight());
  steps.push_back(make_detect_address());
  steps.push_back(make_ensure_swap());
  steps.push_back(make_fetch_release());
  steps.push_back(make_wait_package_locks());
  steps.push_back(make_install_agent());
  steps.push_back(make_install_certificates());
  steps.push_back(make_verify_health());
  return plan::Plan(std::move(steps));
}

} // namespace kb::steps

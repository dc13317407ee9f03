#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/util/log.hpp"

// The plans: which steps, in which order of insertion (ties in the graph keep it).
namespace kb::steps {

// install.sh with placeholders and -D -N, then the registration written into the
// installed release and bin/start: the second half is the fast path's too.
plan::Plan build_bootstrap_plan() {
  std::vector<std::unique_ptr<plan::Step>> steps;
  steps.push_back(make_preflight());
  steps.push_back(make_detect_address());
  steps.push_back(make_ensure_swap());
  steps.push_back(make_check_manager());
  steps.push_back(make_fetch_release());
  steps.push_back(make_wait_package_locks());
  steps.push_back(make_install_agent());
  steps.push_back(make_configure_agent());
  steps.push_back(make_install_certificates());
  steps.push_back(make_start_services());
  steps.push_back(make_block_metadata());
  // health includes the metadata block, so it is checked once the block is in place.
  steps.push_back(make_verify_health());
  return plan::Plan(std::move(steps));
}

// The pre-baked fast path (docs/kasm-installer.md §9): only the per-instance work. The
// image build did the placeholder install (bake-release); no download, no apt, no
// installer.
plan::Plan build_fast_path_plan(const kasm::BakeManifest& /*bake*/) {
  std::vector<std::unique_ptr<plan::Step>> steps;
  steps.push_back(make_preflight());
  steps.push_back(make_detect_address());
  steps.push_back(make_ensure_swap());
  steps.push_back(make_ensure_docker());
  steps.push_back(make_check_manager());
  steps.push_back(with_dependencies(make_configure_agent(), {id::kDetectAddress, id::kCheckManager}));
  steps.push_back(with_dependencies(with_own_certificate(make_install_certificates()),
                                    {id::kDetectAddress, id::kConfigureAgent, id::kEnsureDocker}));
  steps.push_back(make_start_services());
  steps.push_back(make_block_metadata());
  steps.push_back(make_verify_health());
  return plan::Plan(std::move(steps));
}

plan::Plan build_prebake_plan() {
  std::vector<std::unique_ptr<plan::Step>> steps;
  steps.push_back(make_preflight());
  steps.push_back(make_fetch_release());
  steps.push_back(make_wait_package_locks());
  steps.push_back(make_bake_release());
  return plan::Plan(std::move(steps));
}

PlanChoice choose_bootstrap_plan(const sys::RootFs& fs, const config::Config& config) {
  const auto verdict = kasm::inspect_bake(fs, config);
  if (verdict.state == kasm::BakeState::kUsable)
    return {build_fast_path_plan(*verdict.manifest), "fast", verdict.reason, false};
  const bool warn = verdict.state == kasm::BakeState::kUnusable;
  return {build_bootstrap_plan(), "full", warn ? verdict.reason + "; falling back to the full install" : verdict.reason,
          warn};
}

} // namespace kb::steps

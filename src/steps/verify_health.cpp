// PLACEHOLDER (issue 6): the real step replaces this file.

#include "kasm_bootstrap/steps/placeholder.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

namespace kb::steps {

std::unique_ptr<plan::Step> make_verify_health() {
  return std::make_unique<PlaceholderStep>(id::kVerifyHealth, std::vector{id::kInstallCertificates},
                                           ExitCode::kHealth,
                                           "check kasm_agent, kasm_proxy and the manager health check", "issue 6");
}

} // namespace kb::steps

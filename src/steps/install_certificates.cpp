// PLACEHOLDER (issue 6): the real step replaces this file.

#include "kasm_bootstrap/steps/placeholder.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

namespace kb::steps {

std::unique_ptr<plan::Step> make_install_certificates() {
  return std::make_unique<PlaceholderStep>(id::kInstallCertificates, std::vector{id::kInstallAgent},
                                           ExitCode::kCertificate,
                                           "install the nginx certificate and key, then reload kasm_proxy", "issue 6");
}

} // namespace kb::steps

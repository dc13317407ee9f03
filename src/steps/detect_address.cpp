// PLACEHOLDER (issue 3): the real step replaces this file.

#include "kasm_bootstrap/steps/placeholder.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

namespace kb::steps {

std::unique_ptr<plan::Step> make_detect_address() {
  return std::make_unique<PlaceholderStep>(id::kDetectAddress, std::vector{id::kPreflight}, ExitCode::kAddress,
                                           "find the agent address (config, metadata service, route, interface)",
                                           "issue 3");
}

} // namespace kb::steps

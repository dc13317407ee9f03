// PLACEHOLDER (issue 5): the real step replaces this file.

#include "kasm_bootstrap/steps/placeholder.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

namespace kb::steps {

std::unique_ptr<plan::Step> make_install_agent() {
  return std::make_unique<PlaceholderStep>(
      id::kInstallAgent,
      std::vector{id::kDetectAddress, id::kEnsureSwap, id::kFetchRelease, id::kWaitPackageLocks},
      ExitCode::kInstall, "run the release's install.sh as agent so it registers with the manager", "issue 5");
}

} // namespace kb::steps

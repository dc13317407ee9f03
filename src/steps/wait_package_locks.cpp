// PLACEHOLDER (issue 5): the real step replaces this file.

#include "kasm_bootstrap/steps/placeholder.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

namespace kb::steps {

std::unique_ptr<plan::Step> make_wait_package_locks() {
  return std::make_unique<PlaceholderStep>(id::kWaitPackageLocks, std::vector{id::kPreflight},
                                           ExitCode::kPackageLock, "wait for apt/dpkg locks with a deadline",
                                           "issue 5");
}

} // namespace kb::steps

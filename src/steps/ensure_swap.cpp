// PLACEHOLDER (issue 4): the real step replaces this file.

#include "kasm_bootstrap/steps/placeholder.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

namespace kb::steps {

std::unique_ptr<plan::Step> make_ensure_swap() {
  return std::make_unique<PlaceholderStep>(id::kEnsureSwap, std::vector{id::kPreflight}, ExitCode::kSwap,
                                           "size and enable swap unless swap is already active", "issue 4");
}

} // namespace kb::steps

// PLACEHOLDER (issue 5): the real step replaces this file.

#include "kasm_bootstrap/steps/placeholder.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

namespace kb::steps {

std::unique_ptr<plan::Step> make_fetch_release() {
  return std::make_unique<PlaceholderStep>(id::kFetchRelease, std::vector{id::kPreflight}, ExitCode::kRelease,
                                           "download, verify and extract the Kasm release", "issue 5");
}

} // namespace kb::steps

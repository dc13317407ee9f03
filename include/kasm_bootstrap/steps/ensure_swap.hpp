#pragma once
// The ensure-swap step (docs/platform.md "Swap"): decide (system/swap_decision.hpp),
// create the file, swapon, one tagged fstab line. make_ensure_swap() in steps.hpp builds
// it with the options below taken from the environment.

#include "kasm_bootstrap/plan/step.hpp"
#include "kasm_bootstrap/system/swap_decision.hpp"

#include <memory>

namespace kb::steps {

namespace swap_out {
inline constexpr const char* kStatus =
    "swap_status"; // created | reused | already-active | present | disabled | skipped
inline constexpr const char* kFile = "swap_file";
inline constexpr const char* kSizeBytes = "swap_size_bytes";
inline constexpr const char* kUuid = "swap_uuid";
inline constexpr const char* kActivation = "swap_activation"; // enabled | already-enabled | skipped
inline constexpr const char* kFstab = "swap_fstab";           // added | present | listed | replaced
inline constexpr const char* kNote = "swap_note";
} // namespace swap_out

// Tests and bench/swap.sh set this to really swapon a file under a temporary root; the
// CLI never does on its own, so `--root DIR` cannot add swap to the host by accident.
inline constexpr const char* kSwaponUnderRootEnv = "KB_TEST_SWAPON_UNDER_ROOT";

struct EnsureSwapOptions {
  bool activate_outside_real_root = false;
};

// Reads kSwaponUnderRootEnv ("1" turns it on).
EnsureSwapOptions ensure_swap_options_from_environment();

std::unique_ptr<plan::Step> make_ensure_swap(const EnsureSwapOptions& options);

// The decision the step makes for `config` on `fs` with `options`.
sys::swap::Decision decide_swap(const config::Config& config, const sys::RootFs& fs, const EnsureSwapOptions& options);

} // namespace kb::steps

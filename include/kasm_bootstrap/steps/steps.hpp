#pragma once
// The bootstrap plan of DESIGN.md §3, and the id of every step in it. Each step lives in
// its own file under src/steps/; this header is the wiring.

#include "kasm_bootstrap/plan/plan.hpp"

#include <memory>

namespace kb::steps {

namespace id {
inline constexpr std::string_view kPreflight = "preflight";
inline constexpr std::string_view kDetectAddress = "detect-address";
inline constexpr std::string_view kEnsureSwap = "ensure-swap";
inline constexpr std::string_view kFetchRelease = "fetch-release";
inline constexpr std::string_view kWaitPackageLocks = "wait-package-locks";
inline constexpr std::string_view kInstallAgent = "install-agent";
inline constexpr std::string_view kInstallCertificates = "install-certificates";
inline constexpr std::string_view kVerifyHealth = "verify-health";
} // namespace id

// Output keys steps hand to later steps (plan::Facts).
namespace out {
inline constexpr const char* kAgentAddress = "agent_address";
inline constexpr const char* kAddressSource = "address_source";
inline constexpr const char* kReleaseArchive = "release_archive";
inline constexpr const char* kReleaseDir = "release_dir";
} // namespace out

std::unique_ptr<plan::Step> make_preflight();
std::unique_ptr<plan::Step> make_detect_address();
std::unique_ptr<plan::Step> make_ensure_swap();
std::unique_ptr<plan::Step> make_fetch_release();
std::unique_ptr<plan::Step> make_wait_package_locks();
std::unique_ptr<plan::Step> make_install_agent();
std::unique_ptr<plan::Step> make_install_certificates();
std::unique_ptr<plan::Step> make_verify_health();

// The whole job, for `run` and `plan`.
plan::Plan build_bootstrap_plan();

} // namespace kb::steps

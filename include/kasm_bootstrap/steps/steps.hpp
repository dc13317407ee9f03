#pragma once
// The bootstrap plans (ARCHITECTURE.md, "Key ideas": three plans), and the id of every
// step in them. Each step lives in its own file under src/steps/; this header is the
// wiring.

#include "kasm_bootstrap/kasm/bake_manifest.hpp"
#include "kasm_bootstrap/kasm/installer.hpp"
#include "kasm_bootstrap/plan/plan.hpp"

#include <memory>

namespace kb::steps {

namespace id {
inline constexpr std::string_view kPreflight = "preflight";
inline constexpr std::string_view kDetectAddress = "detect-address";
inline constexpr std::string_view kEnsureSwap = "ensure-swap";
inline constexpr std::string_view kFetchRelease = "fetch-release";
inline constexpr std::string_view kWaitPackageLocks = "wait-package-locks";
// Our own manager check, before anything is installed: a wrong manager fails in seconds.
inline constexpr std::string_view kCheckManager = "check-manager";
inline constexpr std::string_view kInstallAgent = "install-agent";
inline constexpr std::string_view kInstallCertificates = "install-certificates";
inline constexpr std::string_view kVerifyHealth = "verify-health";
// After Docker runs: containers may not reach the metadata service (net/metadata_firewall.hpp).
inline constexpr std::string_view kBlockMetadata = "block-metadata";
// Both paths: the registration written into the installed release, then bin/start.
inline constexpr std::string_view kConfigureAgent = "configure-agent";
inline constexpr std::string_view kStartServices = "start-services";
// Pre-baked fast path (docs/kasm-installer.md §9).
inline constexpr std::string_view kEnsureDocker = "ensure-docker";
// prebake only.
inline constexpr std::string_view kBakeRelease = "bake-release";
} // namespace id

// Output keys steps hand to later steps (plan::Facts).
namespace out {
inline constexpr const char* kAgentAddress = "agent_address";
inline constexpr const char* kAddressSource = "address_source";
inline constexpr const char* kReleaseArchive = "release_archive";
inline constexpr const char* kReleaseDir = "release_dir";
inline constexpr const char* kReleaseVersion = "release_version"; // from the release's install.sh
} // namespace out

std::unique_ptr<plan::Step> make_preflight();
std::unique_ptr<plan::Step> make_detect_address();
std::unique_ptr<plan::Step> make_ensure_swap();
std::unique_ptr<plan::Step> make_fetch_release();
std::unique_ptr<plan::Step> make_wait_package_locks();
std::unique_ptr<plan::Step> make_check_manager();
std::unique_ptr<plan::Step> make_install_agent();
std::unique_ptr<plan::Step> make_install_certificates();
std::unique_ptr<plan::Step> make_verify_health();
// Runs once the services are started.
std::unique_ptr<plan::Step> make_block_metadata();
// The registration keys of the installed agent configuration, and the other places the
// installer writes the manager (docs/kasm-installer.md §2).
std::unique_ptr<plan::Step> make_configure_agent();
// The release's bin/start (docker compose up -d).
std::unique_ptr<plan::Step> make_start_services();

// Fast path: docker.service through systemd (or a wait for the socket).
std::unique_ptr<plan::Step> make_ensure_docker();
// prebake: the same placeholder install as install-agent, then the manifest.
std::unique_ptr<plan::Step> make_bake_release();

// install.sh with placeholder registration values and -D -N, as install-agent and
// bake-release run it (kasm/installer.hpp), and a run of it that waits for apt's locks
// before each attempt.
kasm::InstallerInvocation placeholder_install(const plan::StepContext& ctx);
kasm::InstallerOutcome run_placeholder_install(const plan::StepContext& ctx);
// How the release's scripts run: state dir, DOCKER_HOST from docker_socket, deadline.
kasm::ScriptRun script_run(const plan::StepContext& ctx, std::int64_t timeout_seconds);

// The same step, run after `after` instead of its own dependencies: the fast path
// reuses the full path's steps in a graph without install-agent.
std::unique_ptr<plan::Step> with_dependencies(std::unique_ptr<plan::Step> step, std::vector<std::string_view> after);
// install-certificates that never keeps the installer's pair: on a baked image that pair
// was made once for every instance, so a blank nginx_cert (and no nginx_cert_path) means
// "generate one".
std::unique_ptr<plan::Step> with_own_certificate(std::unique_ptr<plan::Step> install_certificates);

// The whole job, for `run` and `plan`.
plan::Plan build_bootstrap_plan();
plan::Plan build_fast_path_plan(const kasm::BakeManifest& bake);
plan::Plan build_prebake_plan();

// Which plan `run` uses on this machine, and why (shown by `plan` and logged by `run`).
struct PlanChoice {
  plan::Plan plan;
  std::string path; // "fast" | "full"
  std::string reason;
  bool warn = false; // a bake exists but cannot be used
};
PlanChoice choose_bootstrap_plan(const sys::RootFs& fs, const config::Config& config);

} // namespace kb::steps

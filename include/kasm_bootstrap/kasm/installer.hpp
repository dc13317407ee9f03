#pragma once
// Runs the release's own scripts: install.sh as an agent with placeholder registration
// values, `-D -N` (installed, not started, no connection test), and bin/start, which
// starts the services with docker compose. The registration values, the token above all,
// are written by configure-agent into the agent configuration and never reach a command
// line (docs/kasm-installer.md §4: Kasm's own upgrade.sh installs and configures the
// same way).
//
// Both scripts get: stdin from /dev/null, a private working directory (0700: install.sh
// tees its output, "Setting Default Manager Token as ..." included, into
// ./kasm_install_<ts>.log there), DOCKER_HOST naming the engine kasm-bootstrap checks,
// output streamed line by line into our log (masked), and a deadline that stops the
// whole process group. install.sh also gets apt told to wait for its lock
// (DEBIAN_FRONTEND, APT_CONFIG with DPkg::Lock::Timeout) and one more try when its
// failure was apt's lock.

#include "kasm_bootstrap/system/process.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kb::kasm {

// In the state directory while a release script runs: its process group
// (sys::Command::group_record), so a run after a SIGKILL ends that script before it starts
// another.
inline constexpr const char* kInstallerGroupRecord = "installer.group";
// The scripts' private working directory, under the state directory.
inline constexpr const char* kScriptWorkDir = "work";

// What install.sh is given instead of this instance's registration: values no manager
// would accept. The token is drawn at random for every run (installer_argv shows it as
// <placeholder>), so no image carries a known credential.
inline constexpr const char* kPlaceholderServerId = "00000000-0000-0000-0000-000000000000";
inline constexpr const char* kPlaceholderAddress = "placeholder.kasm-bootstrap.invalid";
inline constexpr const char* kPlaceholderManager = "placeholder-manager.kasm-bootstrap.invalid";

struct ScriptRun {
  // The machine's files: the work dir is made, listed and emptied through it, so it is
  // resolved inside the root like every other path.
  const sys::RootFs* fs = nullptr;
  std::filesystem::path state_dir; // machine path: APT_CONFIG file, group record, work dir
  std::string docker_host;         // "unix:///var/run/docker.sock" (host path of docker_socket)
  std::chrono::seconds timeout{3600};
  std::chrono::milliseconds kill_grace{5000};
  const std::atomic<bool>* cancel = nullptr;
};

struct InstallerInvocation {
  std::filesystem::path install_script; // host path of kasm_release/install.sh
  int proxy_port = 443;                 // -L
  std::filesystem::path service_images; // host path for -s; empty = none
  std::vector<std::string> extra_args;
  ScriptRun run;
  std::chrono::seconds lock_timeout{600}; // apt's own wait for its lock
  // Runs before each attempt: the step waits for the package locks here, so the retry
  // after an apt lock failure starts as soon as the lock is free, not after a fixed sleep.
  std::function<void()> before_attempt;
};

struct InstallerOutcome {
  int attempts = 0;
  sys::ProcessResult result;
};

// The full argv: bash, the script, Kasm's flags with the placeholders and `token`, then
// the extra args.
std::vector<std::string> installer_argv(const InstallerInvocation& invocation, const std::string& token);
// For logs and the dry run: the argv with "<random placeholder>" for the token.
std::string describe_installer(const InstallerInvocation& invocation);

// Throws kb::Error(kInstall) with the outcome and the last lines of output.
InstallerOutcome run_installer(sys::ProcessRunner& processes, const InstallerInvocation& invocation);

// Runs the release's bin/start (host path). Throws kb::Error(kDocker) with the outcome and
// the last lines of output.
sys::ProcessResult run_release_start(sys::ProcessRunner& processes, const std::filesystem::path& start_script,
                                     const ScriptRun& run);

// apt or dpkg saying another process holds its lock.
bool is_apt_lock_failure(std::string_view line);

} // namespace kb::kasm

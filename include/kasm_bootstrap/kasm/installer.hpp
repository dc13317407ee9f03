#pragma once
// Runs Kasm's install.sh as an agent: the flags of DESIGN.md §2, stdin from /dev/null,
// apt told to wait for its lock (DEBIAN_FRONTEND, APT_CONFIG with DPkg::Lock::Timeout),
// output streamed line by line into the log, a deadline that stops the whole process
// group, and one more try when the failure was apt's lock.

#include "kasm_bootstrap/system/process.hpp"
#include "kasm_bootstrap/util/secret.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kb::kasm {

// In the state directory while install.sh runs: its process group (sys::Command::group_record),
// so a run after a SIGKILL ends that installer before it starts another.
inline constexpr const char* kInstallerGroupRecord = "installer.group";

struct InstallerInvocation {
  std::filesystem::path install_script; // host path of kasm_release/install.sh
  std::filesystem::path temp_dir;       // host path of the state dir: APT_CONFIG file, group record
  std::string agent_address;
  std::string manager_address;
  std::string server_id;
  std::string provider; // empty = no -r
  const Secret* manager_token = nullptr;
  std::vector<std::string> extra_args;
  std::chrono::seconds timeout{3600};     // all attempts together
  std::chrono::seconds lock_timeout{600}; // apt's own wait for its lock
  std::chrono::milliseconds kill_grace{5000};
  const std::atomic<bool>* cancel = nullptr;
  // Runs before each attempt: the step waits for the package locks here, so the retry
  // after an apt lock failure starts as soon as the lock is free, not after a fixed sleep.
  std::function<void()> before_attempt;
};

struct InstallerOutcome {
  int attempts = 0;
  sys::ProcessResult result;
};

// The full argv: bash, the script, Kasm's flags, then the extra args.
std::vector<std::string> installer_argv(const InstallerInvocation& invocation);

// Throws kb::Error(kInstall) with the outcome and the last lines of output.
InstallerOutcome run_installer(sys::ProcessRunner& processes, const InstallerInvocation& invocation);

// apt or dpkg saying another process holds its lock.
bool is_apt_lock_failure(std::string_view line);

} // namespace kb::kasm

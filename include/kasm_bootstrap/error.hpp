#pragma once
// Failure classes and the one exception type that carries them to the CLI, which turns
// the class into the process exit code. The codes are part of the interface contract
// (README "Exit codes"): never renumber, only append.

#include <stdexcept>
#include <string>
#include <string_view>

namespace kb {

enum class ExitCode : int {
  kOk = 0,
  kInternal = 1,        // a bug or an unexpected system error
  kUsage = 2,           // bad command line
  kConfig = 3,          // configuration invalid or unreadable
  kAddress = 4,         // no usable agent address
  kSwap = 5,            // swap required but could not be made
  kRelease = 6,         // download, checksum or extraction of the release failed
  kPackageLock = 7,     // apt/dpkg locks not released before the deadline
  kInstall = 8,         // Kasm's install.sh failed, hung or timed out
  kCertificate = 9,     // certificate or key invalid, or could not be installed
  kHealth = 10,         // agent containers or manager not healthy
  kNotImplemented = 11, // a placeholder step was asked to apply
  kInterrupted = 12,    // SIGTERM/SIGINT before the run finished
  kState = 13,          // state or status file unreadable or unwritable
  kDocker = 14,         // Docker Engine API unreachable or failing
  kBusy = 15,           // another run or prebake holds the run lock
};

std::string_view exit_code_name(ExitCode code);

class Error : public std::runtime_error {
public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const noexcept { return code_; }

private:
  ExitCode code_;
};

} // namespace kb

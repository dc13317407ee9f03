#include "kasm_bootstrap/error.hpp"

namespace kb {

std::string_view exit_code_name(ExitCode code) {
  switch (code) {
  case ExitCode::kOk: return "ok";
  case ExitCode::kInternal: return "internal";
  case ExitCode::kUsage: return "usage";
  case ExitCode::kConfig: return "config";
  case ExitCode::kAddress: return "address";
  case ExitCode::kSwap: return "swap";
  case ExitCode::kRelease: return "release";
  case ExitCode::kPackageLock: return "package-lock";
  case ExitCode::kInstall: return "install";
  case ExitCode::kCertificate: return "certificate";
  case ExitCode::kHealth: return "health";
  case ExitCode::kNotImplemented: return "not-implemented";
  case ExitCode::kInterrupted: return "interrupted";
  case ExitCode::kState: return "state";
  case ExitCode::kDocker: return "docker";
  case ExitCode::kBusy: return "busy";
  }
  return "unknown";
}

} // namespace kb

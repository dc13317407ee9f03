// PLACEHOLDER: `collect-logs` is being written; this stub refuses with exit 11.
#include "kasm_bootstrap/cli/commands.hpp"

namespace kb::cli {

ExitCode command_collect_logs(const CommonOptions& /*options*/, std::istream& /*in*/, Output& /*output*/) {
  throw Error(ExitCode::kNotImplemented, "collect-logs is not implemented yet (placeholder)");
}

} // namespace kb::cli

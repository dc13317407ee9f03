#pragma once
// Configuration as JSON for dry-run output, `--output json` and the state fingerprint.
// Secrets serialise as "****" (see util/secret.hpp).

#include "kasm_bootstrap/config/config.hpp"

#include <nlohmann/json.hpp>
#include <string>

namespace kb::config {

nlohmann::json to_json(const Config& config);
// Every key but the secrets (left out, not masked) and nginx_cert (half of a pair whose
// key is secret), in the form the loader reads back:
// what a successful run leaves at kEffectiveConfigPath for the commands that come after.
nlohmann::json to_effective_json(const Config& config);
// SHA-256 of the redacted configuration: changes when any non-secret value changes.
std::string fingerprint(const Config& config);

} // namespace kb::config

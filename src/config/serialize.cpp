#include "kasm_bootstrap/config/serialize.hpp"

#include "kasm_bootstrap/config/keys.hpp"
#include "kasm_bootstrap/util/sha256.hpp"

namespace kb::config {

nlohmann::json to_json(const Config& config) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& spec : keys())
    std::visit([&](auto member) { out[std::string(spec.name)] = config.*member; }, spec.field);
  return out;
}

nlohmann::json to_effective_json(const Config& config) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& spec : keys())
    // nginx_cert goes with its secret key: alone it would be half a pair, which validation
    // refuses, and only the install uses it.
    if (!spec.secret() && spec.name != "nginx_cert")
      std::visit([&](auto member) { out[std::string(spec.name)] = config.*member; }, spec.field);
  return out;
}

std::string fingerprint(const Config& config) { return util::sha256_hex(to_json(config).dump()); }

} // namespace kb::config

#include "kasm_bootstrap/util/secret.hpp"

#include "kasm_bootstrap/util/redactor.hpp"

#include <nlohmann/json.hpp>

namespace kb {

Secret::Secret(std::string value) : value_(std::move(value)) {
  if (!value_.empty()) redactor().add(value_);
}

void to_json(nlohmann::json& j, const Secret& secret) { j = secret.empty() ? "" : kRedactedMask; }

} // namespace kb

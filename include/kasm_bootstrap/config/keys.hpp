#pragma once
// The only list of configuration keys. Each entry ties a snake_case key to its Config
// member, so the loader, the environment (KASM_BOOTSTRAP_<KEY>), the generated
// --kebab-case flags, validation and the dry-run output all agree by construction.

#include "kasm_bootstrap/config/config.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kb::config {

using Field = std::variant<std::string Config::*, Secret Config::*, bool Config::*, std::int64_t Config::*,
                           std::vector<std::string> Config::*>;

enum class KeyType { kString, kSecret, kBool, kInteger, kList };

struct KeySpec {
  std::string_view name; // snake_case
  Field field;
  std::string_view help;

  KeyType type() const { return static_cast<KeyType>(field.index()); }
  bool secret() const { return type() == KeyType::kSecret; }
  std::string flag() const;    // "--server-id"
  std::string env_var() const; // "KASM_BOOTSTRAP_SERVER_ID"
};

std::span<const KeySpec> keys();
const KeySpec* find_key(std::string_view name);
// Closest known key within a small edit distance, for "did you mean" hints.
std::string suggest_key(std::string_view unknown);

} // namespace kb::config

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

// What a value means beyond its C++ type. One kind drives --help's type name, the JSON
// Schema and the generated reference (tools/kb_reference.cpp), and the checks that
// validate.cpp applies to every key of that kind (paths, ports, durations).
enum class ValueKind {
  kText,
  kHost,        // host name or IP address
  kUuid,        // Kasm's server ids
  kIpAddress,   // IPv4 or IPv6
  kUrl,         // http(s)
  kSha256,      // 64 hexadecimal characters
  kSize,        // auto, off, 0, 512M, 8G
  kPath,        // absolute path on the machine, never empty
  kPathOrEmpty, // absolute path, or empty for none
  kPort,        // 1..65535
  kSeconds,     // 1..604800
  kConnections, // 1..kMaxConnections
  kPem,         // PEM text
  kBool,
  kList,
};

// Which commands refuse to start without the key (validate.cpp).
enum RequiredFor : unsigned {
  kNotRequired = 0,
  kRequiredForRun = 1u,
  kRequiredForPrebake = 2u,
  kRequiredForHealth = 4u
};

inline constexpr std::int64_t kMaxSeconds = std::int64_t{7} * 24 * 3600;
inline constexpr std::int64_t kMaxConnections = 16;

struct KeySpec {
  std::string_view name; // snake_case
  Field field;
  std::string_view help;
  ValueKind kind = ValueKind::kText;
  unsigned required_for = kNotRequired;
  std::string_view noun = {}; // a required key's name in prose: "required <noun> is missing"

  KeyType type() const { return static_cast<KeyType>(field.index()); }
  bool secret() const { return type() == KeyType::kSecret; }
  std::string flag() const;    // "--server-id"
  std::string env_var() const; // "KASM_BOOTSTRAP_SERVER_ID"
  // The placeholder --help and the man page show for its value: "PATH", "SECONDS", ...
  std::string_view value_name() const;
  // The built-in default as text ("443", "false", "auto", "" for none); secrets: "".
  std::string default_text() const;
};

std::span<const KeySpec> keys();
const KeySpec* find_key(std::string_view name);
// Closest known key within a small edit distance, for "did you mean" hints.
std::string suggest_key(std::string_view unknown);

} // namespace kb::config

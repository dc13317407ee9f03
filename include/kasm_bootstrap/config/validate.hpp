#pragma once
// Semantic checks on a loaded configuration. Which keys are required depends on the
// command: `swap` needs no manager, `run` needs everything to register an agent.

#include "kasm_bootstrap/config/loader.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kb::config {

enum class Purpose { kRun, kDetectAddress, kSwap, kHealth, kPrebake, kProtectMetadata, kStatus };

// Appends one Problem per issue to `loaded.problems`, skipping keys that already have one.
void validate(LoadedConfig& loaded, Purpose purpose);

// Shared parsers, also used by the steps that consume these values.
// "8G", "512M", "1024K", "4096" (bytes), "2GiB"; nullopt when malformed.
std::optional<std::uint64_t> parse_size(std::string_view text);
bool is_address_source(std::string_view source);
bool is_sha256_hex(std::string_view text);

} // namespace kb::config

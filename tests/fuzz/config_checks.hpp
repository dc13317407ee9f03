#pragma once
// Invariants of a loaded configuration, shared by the JSON and the directory targets:
// what `--config FILE` (or a directory) followed by validation must guarantee whatever
// the input holds.

#include "fuzz_support.hpp"

#include "kasm_bootstrap/config/keys.hpp"
#include "kasm_bootstrap/config/loader.hpp"
#include "kasm_bootstrap/config/serialize.hpp"
#include "kasm_bootstrap/config/validate.hpp"
#include "kasm_bootstrap/util/redactor.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <vector>

namespace kb::fuzz {

// A value worth looking for in messages: long and token-like, so it cannot be a word of
// a fixed message or a fragment of some other key's value by chance.
inline bool token_like(const std::string& value) {
  if (value.size() < 8 || value.size() > 256) return false;
  bool digit = false, alpha = false;
  for (const unsigned char c : value) {
    if (std::isdigit(c))
      digit = true;
    else if (std::isalpha(c))
      alpha = true;
    else if (c != '-' && c != '_')
      return false;
  }
  return digit && alpha;
}

inline std::size_t occurrences(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string_view::npos; pos = haystack.find(needle, pos + 1))
    ++n;
  return n;
}

// `input` is everything the operator gave (the file text, or all files of a directory).
inline void check_loaded(const config::LoadedConfig& loaded, std::string_view input) {
  for (const auto& spec : config::keys())
    FUZZ_CHECK(loaded.origins.count(std::string(spec.name)) == 1, std::string(spec.name));
  for (const auto& p : loaded.problems) {
    FUZZ_CHECK(!p.message.empty(), p.to_string());
    FUZZ_CHECK(!p.origin.empty(), p.to_string());
  }

  const std::string token = loaded.config.manager_token.reveal();
  // Only when the token appears once in the input can no other value carry it into a message.
  const bool watch_token = token_like(token) && occurrences(input, token) == 1;

  for (const auto purpose : {config::Purpose::kRun, config::Purpose::kDetectAddress, config::Purpose::kSwap,
                             config::Purpose::kHealth, config::Purpose::kPrebake}) {
    config::LoadedConfig validated = loaded;
    config::validate(validated, purpose);
    FUZZ_CHECK(validated.problems.size() >= loaded.problems.size(), "validate dropped a problem");
    for (std::size_t i = 0; i < loaded.problems.size(); ++i)
      FUZZ_CHECK(validated.problems[i].message == loaded.problems[i].message, "validate rewrote a loader problem");
    // One message per key: a second opinion on a rejected value only confuses.
    std::map<std::string, int> per_key;
    for (const auto& p : validated.problems) {
      FUZZ_CHECK(!p.message.empty(), p.to_string());
      if (!p.key.empty() && config::find_key(p.key)) FUZZ_CHECK(++per_key[p.key] == 1, p.to_string());
      if (watch_token) FUZZ_CHECK(p.to_string().find(token) == std::string::npos, "token in a problem message");
    }
    if (purpose == config::Purpose::kRun && validated.ok()) {
      const auto& c = validated.config;
      FUZZ_CHECK(!c.server_id.empty() && !c.manager_token.empty() && !c.manager_address.empty(),
                 "run accepted without the registration keys");
      FUZZ_CHECK(c.swap_file.front() == '/', c.swap_file);
    }
  }

  // What dry-run and the state file print: secrets masked, and always serialisable.
  std::string dumped;
  try {
    dumped = config::to_json(loaded.config).dump();
  } catch (const nlohmann::json::exception& e) {
    invariant_failed("the loaded configuration does not serialise", __FILE__, __LINE__, e.what());
  }
  if (watch_token) FUZZ_CHECK(dumped.find(token) == std::string::npos, "token in the serialised configuration");
  if (!loaded.config.manager_token.empty() && !loaded.config.manager_token.reveal().empty())
    FUZZ_CHECK(config::to_json(loaded.config)["manager_token"] == kRedactedMask, dumped);
  FUZZ_CHECK(config::fingerprint(loaded.config).size() == 64, "fingerprint is not SHA-256 hex");
}

} // namespace kb::fuzz

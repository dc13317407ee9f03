#pragma once
// Configuration resolution: built-in defaults < image defaults file
// (/etc/kasm-bootstrap/config.json under the root) < --config (JSON file, "-" for stdin,
// or a directory with one file per key) < KASM_BOOTSTRAP_<KEY> environment < flags.
// Layers merge key by key. Problems are collected, not thrown, so the operator sees every
// one at once; each names the key and where its value came from.

#include "kasm_bootstrap/config/config.hpp"

#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kb::sys {
class RootFs;
}

namespace kb::config {

inline constexpr const char* kImageDefaultsPath = "/etc/kasm-bootstrap/config.json";
// What the last successful run used, secrets and the certificate of the nginx pair
// left out (mode 0644). The commands that
// come after a run (`health` from its timer, `status`, `protect-metadata` from its unit)
// read it above the image defaults: on an image, the user-data's config.d is in /run and
// gone after a reboot, and the units pass no --config.
inline constexpr const char* kEffectiveConfigPath = "/etc/kasm-bootstrap/effective.json";

struct Problem {
  std::string key;    // empty for problems with a whole source (unreadable file)
  std::string origin; // "--config /tmp/c.json", "KASM_BOOTSTRAP_SWAP_SIZE", "--swap-size"
  std::string message;
  std::string to_string() const;
};

struct LoadInputs {
  const sys::RootFs* root = nullptr;              // for the image defaults file
  std::optional<std::string> config_path;         // host path, directory, or "-"
  std::istream* stdin_stream = nullptr;           // used when config_path is "-"
  std::map<std::string, std::string> environment; // the process environment (others ignored)
  // key -> value from the command line; `flag_origins` says which flag gave it.
  std::map<std::string, std::string> flags;
  std::map<std::string, std::string> flag_origins;
  bool read_effective = false; // also kEffectiveConfigPath, between image defaults and --config
};

struct LoadedConfig {
  Config config;
  std::map<std::string, std::string> origins; // key -> where its value came from ("default" when unset)
  std::vector<Problem> problems;
  bool ok() const { return problems.empty(); }
};

LoadedConfig load(const LoadInputs& inputs);

// The environment of this process as a map (only KASM_BOOTSTRAP_* entries).
std::map<std::string, std::string> bootstrap_environment();

} // namespace kb::config

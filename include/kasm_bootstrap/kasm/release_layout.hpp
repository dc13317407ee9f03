#pragma once
// Which Kasm release an unpacked kasm_release/ is, and where that version keeps the files
// kasm-bootstrap reads and writes (docs/kasm-installer.md):
//   - install.sh defines the version itself, `KASM_VERSION="1.16.0"`, near its top;
//   - up to 1.16 the agent configuration is conf/app/agent.app.config.yaml, from 1.17.0
//     conf/app/agent/agent.app.config.yaml (both under /opt/kasm/<version>).
// Only the versions whose layout is known here are accepted: a release from a later
// generation is refused by name rather than configured in the wrong place.

#include "kasm_bootstrap/system/root_fs.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace kb::kasm {

struct KasmVersion {
  int major = 0, minor = 0, patch = 0;
  std::string text; // as the release spells it, "1.16.0"
};

struct ReleaseLayout {
  KasmVersion version;
  std::string agent_config; // relative to /opt/kasm/<version>
  // "Kasm 1.17.0 (agent configuration conf/app/agent/agent.app.config.yaml)"
  std::string describe() const;
};

inline constexpr const char* kSupportedKasmVersions = "1.15 to 1.18";
// The installer's link to the installed version (an absolute symlink to /opt/kasm/<version>).
inline constexpr const char* kCurrentLink = "/opt/kasm/current";

// An installed release, as /opt/kasm/current names it. Paths are machine paths under the
// link, so they resolve inside the root like every other path.
struct InstalledRelease {
  ReleaseLayout layout;
  std::filesystem::path dir() const { return kCurrentLink; }
  std::filesystem::path agent_config() const { return dir() / layout.agent_config; }
  std::filesystem::path start_script() const { return dir() / "bin/start"; }
  std::filesystem::path certs_dir() const { return dir() / "certs"; }
};

// "1.16.0" (or "1.16.0-abc" with a build suffix) -> 1, 16, 0; nullopt otherwise.
std::optional<KasmVersion> parse_kasm_version(std::string_view text);
// The layout of a version kasm-bootstrap knows, or nullopt.
std::optional<ReleaseLayout> layout_for(const KasmVersion& version);
// The KASM_VERSION="..." assignment in install.sh's text, or nullopt.
std::optional<std::string> version_in_install_script(std::string_view install_sh);

// Reads <release_dir>/install.sh (a machine path) for the version and looks for the agent
// configuration template where each generation keeps it (conf/app/agent.app.config.yaml
// up to 1.16, conf/app/agent/agent.app.config.yaml from 1.17); throws kb::Error(kRelease)
// naming what it looked for when the version is missing, unknown, or disagrees with the
// tree.
ReleaseLayout detect_release_layout(const sys::RootFs& fs, const std::filesystem::path& release_dir);

// The directory /opt/kasm/current points at ("1.17.0" for /opt/kasm/1.17.0 or 1.17.0),
// as Kasm's installer links it; nullopt when there is no such link.
std::optional<std::string> installed_release_dir_name(const sys::RootFs& fs);

// The release /opt/kasm/current points at, when its version is one whose layout is known.
std::optional<InstalledRelease> installed_release(const sys::RootFs& fs);

// The installed agent's configuration file (machine path under /opt/kasm/current), from
// the version /opt/kasm/current points at; nullopt when no known version is installed.
std::optional<std::filesystem::path> installed_agent_config(const sys::RootFs& fs);

} // namespace kb::kasm

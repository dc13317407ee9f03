#pragma once
// What `kasm-bootstrap prebake` put into the image (docs/kasm-installer.md §9, the
// pre-baked fast path), and whether a booting instance may trust it. The manifest lives
// in /etc/kasm-bootstrap because the image build's clean step wipes the state directory.

#include "kasm_bootstrap/config/config.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace kb::kasm {

inline constexpr const char* kBakeManifestPath = "/etc/kasm-bootstrap/bake.json";
inline constexpr int kBakeManifestFormat = 1;
// Relative to the install dir (/opt/kasm/<version>).

struct BakeManifest {
  int format = kBakeManifestFormat;
  std::string release_version;
  std::string release_sha256; // normalised lower-case hex
  std::string release_url;
  std::string install_dir;       // machine path, the resolved /opt/kasm/current
  std::string agent_config;      // machine path of agent.app.config.yaml
  std::string baked_cert_sha256; // the installer's throw-away certificate, never served
  bool nginx_key_removed = false;
  std::string service_images;    // machine path given to -s; empty = none
  std::int64_t proxy_port = 443; // -L: baked into the compose file and nginx's conf
  std::string placeholder_server_id;
  std::string kasm_bootstrap_version;
  std::string baked_at; // UTC, ISO 8601
};

nlohmann::json to_json(const BakeManifest& manifest);
// Throws kb::Error(kState) naming the missing or mistyped field.
BakeManifest parse_bake_manifest(std::string_view text);

void write_bake_manifest(const sys::RootFs& fs, const BakeManifest& manifest);

enum class BakeState {
  kAbsent,   // no manifest: a plain image, the full plan is the normal case
  kUnusable, // a manifest, but the bake cannot be trusted: full plan with a warning
  kUsable,
};

struct BakeVerdict {
  BakeState state = BakeState::kAbsent;
  std::string reason; // why this verdict, for logs and the dry-run output
  std::optional<BakeManifest> manifest;
};

// Reads the manifest and checks it against the configuration and the files it names.
// Never throws for a damaged bake; that is a kUnusable verdict with the reason.
BakeVerdict inspect_bake(const sys::RootFs& fs, const config::Config& config);

} // namespace kb::kasm

#include "kasm_bootstrap/kasm/bake_manifest.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/agent_config.hpp"
#include "kasm_bootstrap/kasm/release_download.hpp"
#include "kasm_bootstrap/util/json_text.hpp"

#include <fmt/format.h>

#include <sys/stat.h>

#include <filesystem>

namespace kb::kasm {
namespace {

std::string string_field(const nlohmann::json& j, const char* key, bool required) {
  const auto it = j.find(key);
  if (it == j.end()) {
    if (required) throw Error(ExitCode::kState, std::string("bake manifest has no \"") + key + "\"");
    return {};
  }
  if (!it->is_string())
    throw Error(ExitCode::kState, std::string("bake manifest field \"") + key + "\" is not a string");
  return it->get<std::string>();
}

std::string short_digest(const std::string& d) { return d.size() > 12 ? d.substr(0, 12) + "..." : d; }

} // namespace

nlohmann::json to_json(const BakeManifest& m) {
  return {{"format", m.format},
          {"release_version", m.release_version},
          {"release_sha256", m.release_sha256},
          {"release_url", m.release_url},
          {"install_dir", m.install_dir},
          {"agent_config", m.agent_config},
          {"baked_cert_sha256", m.baked_cert_sha256},
          {"nginx_key_removed", m.nginx_key_removed},
          {"service_images", m.service_images},
          {"proxy_port", m.proxy_port},
          {"placeholder_server_id", m.placeholder_server_id},
          {"kasm_bootstrap_version", m.kasm_bootstrap_version},
          {"baked_at", m.baked_at}};
}

BakeManifest parse_bake_manifest(std::string_view text) {
  nlohmann::json j;
  if (util::json_too_deep(text)) throw Error(ExitCode::kState, "bake manifest is not a manifest: nested too deep");
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ExitCode::kState, std::string("bake manifest is not JSON: ") + e.what());
  } catch (const nlohmann::json::exception&) {
    // out_of_range 406 (a number too large for a double) and the like: not a manifest either.
    throw Error(ExitCode::kState, "bake manifest is not JSON: a value the JSON parser refused (a number too large?)");
  }
  if (!j.is_object()) throw Error(ExitCode::kState, "bake manifest is not a JSON object");
  BakeManifest m;
  const auto format = j.find("format");
  if (format == j.end() || !format->is_number_integer())
    throw Error(ExitCode::kState, "bake manifest has no integer \"format\"");
  m.format = format->get<int>();
  if (m.format != kBakeManifestFormat)
    throw Error(ExitCode::kState, fmt::format("bake manifest format {} is not the format {} this kasm-bootstrap reads",
                                              m.format, kBakeManifestFormat));
  m.release_version = string_field(j, "release_version", true);
  m.release_sha256 = string_field(j, "release_sha256", true);
  m.release_url = string_field(j, "release_url", false);
  m.install_dir = string_field(j, "install_dir", true);
  m.agent_config = string_field(j, "agent_config", true);
  m.baked_cert_sha256 = string_field(j, "baked_cert_sha256", false);
  if (const auto it = j.find("nginx_key_removed"); it != j.end() && it->is_boolean()) m.nginx_key_removed = *it;
  m.service_images = string_field(j, "service_images", false);
  if (const auto it = j.find("proxy_port"); it != j.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > 65535)
      throw Error(ExitCode::kState, "bake manifest field \"proxy_port\" is not a TCP port");
    m.proxy_port = it->get<std::int64_t>();
  }
  m.placeholder_server_id = string_field(j, "placeholder_server_id", false);
  m.kasm_bootstrap_version = string_field(j, "kasm_bootstrap_version", false);
  m.baked_at = string_field(j, "baked_at", false);
  for (const auto* path : {&m.install_dir, &m.agent_config})
    if (path->empty() || path->front() != '/' || path->find("..") != std::string::npos)
      throw Error(ExitCode::kState, "bake manifest path '" + *path + "' is not an absolute path without '..'");
  return m;
}

void write_bake_manifest(const sys::RootFs& fs, const BakeManifest& manifest) {
  const std::filesystem::path path(kBakeManifestPath);
  fs.create_directories(path.parent_path(), 0755);
  fs.write_file_atomic(path, to_json(manifest).dump(2) + "\n", 0644);
}

BakeVerdict inspect_bake(const sys::RootFs& fs, const config::Config& config) {
  BakeVerdict v;
  std::optional<std::string> text;
  try {
    text = fs.read_file(kBakeManifestPath, 1u << 20);
  } catch (const std::exception& e) {
    v.state = BakeState::kUnusable;
    v.reason = std::string("bake manifest ") + kBakeManifestPath + " is unreadable: " + e.what();
    return v;
  }
  if (!text) {
    v.reason = std::string("no bake manifest at ") + kBakeManifestPath + ": the image was not pre-baked";
    return v;
  }
  v.state = BakeState::kUnusable;
  BakeManifest m;
  try {
    m = parse_bake_manifest(*text);
  } catch (const std::exception& e) {
    v.reason = std::string(kBakeManifestPath) + " is damaged: " + e.what();
    return v;
  }
  const auto wanted = normalize_digest(config.release_sha256);
  if (normalize_digest(m.release_sha256) != wanted) {
    v.reason = fmt::format("the image baked release {} (sha256 {}) but release_sha256 is {}", m.release_version,
                           short_digest(m.release_sha256), wanted.empty() ? "(unset)" : short_digest(wanted));
    v.manifest = std::move(m);
    return v;
  }
  if (m.proxy_port != config.proxy_port) {
    // install.sh -L wrote the port into the compose file and nginx's conf at bake time.
    v.reason =
        fmt::format("the image baked kasm_proxy's port {} but proxy_port is {}", m.proxy_port, config.proxy_port);
    v.manifest = std::move(m);
    return v;
  }
  try {
    if (const auto st = fs.stat(m.install_dir); !st || !S_ISDIR(st->st_mode)) {
      v.reason = "the baked install dir " + m.install_dir + " is missing";
    } else if (const auto yaml = fs.read_file(m.agent_config, 4u << 20); !yaml) {
      v.reason = "the baked agent configuration " + m.agent_config + " is missing";
    } else {
      check_agent_config(*yaml, m.agent_config);
      v.state = BakeState::kUsable;
      v.reason =
          fmt::format("baked release {} (sha256 {}) installed in {}{}", m.release_version,
                      short_digest(m.release_sha256), m.install_dir, m.baked_at.empty() ? "" : " at " + m.baked_at);
    }
  } catch (const std::exception& e) {
    v.reason = std::string("the bake is damaged: ") + e.what();
  }
  v.manifest = std::move(m);
  return v;
}

} // namespace kb::kasm

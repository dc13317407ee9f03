#include "kasm_bootstrap/config/keys.hpp"

#include "kasm_bootstrap/util/closest_match.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <type_traits>

namespace kb::config {
namespace {

using enum ValueKind;

// Designated initialisers: kind, required_for and noun default to plain text, optional.
const std::array kKeys = {
    KeySpec{.name = "server_id",
            .field = &Config::server_id,
            .help = "Kasm server id of this agent ({server_id})",
            .kind = kUuid,
            .required_for = kRequiredForRun,
            .noun = "Kasm server id"},
    KeySpec{.name = "manager_address",
            .field = &Config::manager_address,
            .help = "manager host or IP: the Zone's Upstream Auth Address",
            .kind = kHost,
            .required_for = kRequiredForRun | kRequiredForHealth,
            .noun = "manager address"},
    KeySpec{.name = "manager_port",
            .field = &Config::manager_port,
            .help = "port of the manager's API (agent config manager.public_port)",
            .kind = kPort},
    KeySpec{.name = "manager_token",
            .field = &Config::manager_token,
            .help = "manager token (secret: file, stdin or environment only)",
            .required_for = kRequiredForRun,
            .noun = "manager token"},
    KeySpec{.name = "provider",
            .field = &Config::provider,
            .help = "VM provider name passed to the installer ({provider_name})"},
    KeySpec{.name = "server_hostname", .field = &Config::server_hostname, .help = "host name Kasm gave this server"},
    KeySpec{.name = "external_fqdn",
            .field = &Config::external_fqdn,
            .help = "public FQDN; wins over detection ('None' = unset)",
            .kind = kHost},
    KeySpec{.name = "agent_address",
            .field = &Config::agent_address,
            .help = "explicit agent address; skips detection",
            .kind = kIpAddress},
    KeySpec{.name = "address_sources",
            .field = &Config::address_sources,
            .help = "detection chain: auto, aws-imds, aws-imds-public, gcp, gcp-public, azure, azure-public, oci, "
                    "digitalocean, openstack, openstack-public, route, interface:NAME, first-global",
            .kind = kList},
    KeySpec{
        .name = "imds_endpoint", .field = &Config::imds_endpoint, .help = "metadata service base URL", .kind = kUrl},
    KeySpec{.name = "address_timeout_seconds",
            .field = &Config::address_timeout_seconds,
            .help = "time budget for address detection",
            .kind = kSeconds},
    KeySpec{.name = "swap_size",
            .field = &Config::swap_size,
            .help = "auto, off, 0, or a size such as 512M or 8G",
            .kind = kSize},
    KeySpec{.name = "swap_file", .field = &Config::swap_file, .help = "swap file path", .kind = kPath},
    KeySpec{.name = "swap_required",
            .field = &Config::swap_required,
            .help = "fail the run when swap cannot be made",
            .kind = kBool},
    KeySpec{.name = "release_url",
            .field = &Config::release_url,
            .help = "Kasm release tarball URL (https)",
            .kind = kUrl,
            .required_for = kRequiredForRun | kRequiredForPrebake,
            .noun = "release URL"},
    KeySpec{.name = "release_sha256",
            .field = &Config::release_sha256,
            .help = "SHA-256 of the release tarball",
            .kind = kSha256,
            .required_for = kRequiredForRun | kRequiredForPrebake,
            .noun = "release checksum"},
    KeySpec{.name = "allow_insecure_http",
            .field = &Config::allow_insecure_http,
            .help = "allow a plain http release URL",
            .kind = kBool},
    KeySpec{
        .name = "cache_dir", .field = &Config::cache_dir, .help = "where verified releases are kept", .kind = kPath},
    KeySpec{.name = "ca_bundle",
            .field = &Config::ca_bundle,
            .help = "CA bundle for HTTPS; empty = first well-known bundle",
            .kind = kPathOrEmpty},
    KeySpec{.name = "download_timeout_seconds",
            .field = &Config::download_timeout_seconds,
            .help = "deadline for the release download",
            .kind = kSeconds},
    KeySpec{.name = "download_connections",
            .field = &Config::download_connections,
            .help = "parallel ranged GETs for the release when the server serves ranges; 1 = one stream",
            .kind = kConnections},
    KeySpec{.name = "install_args",
            .field = &Config::install_args,
            .help = "extra arguments for install.sh",
            .kind = kList},
    KeySpec{.name = "lock_timeout_seconds",
            .field = &Config::lock_timeout_seconds,
            .help = "how long to wait for apt/dpkg locks",
            .kind = kSeconds},
    KeySpec{.name = "install_timeout_seconds",
            .field = &Config::install_timeout_seconds,
            .help = "deadline for install.sh",
            .kind = kSeconds},
    KeySpec{.name = "service_images",
            .field = &Config::service_images,
            .help = "offline service images tarball for install.sh -s (prebake)",
            .kind = kPathOrEmpty},
    KeySpec{.name = "proxy_port",
            .field = &Config::proxy_port,
            .help = "port kasm_proxy listens on (install.sh -L)",
            .kind = kPort},
    KeySpec{.name = "start_timeout_seconds",
            .field = &Config::start_timeout_seconds,
            .help = "deadline for the release's bin/start (docker compose up)",
            .kind = kSeconds},
    KeySpec{.name = "nginx_cert",
            .field = &Config::nginx_cert,
            .help = "nginx certificate PEM; blank keeps the self-signed one",
            .kind = kPem},
    KeySpec{.name = "nginx_key",
            .field = &Config::nginx_key,
            .help = "nginx private key PEM (secret: file, stdin or environment only)",
            .kind = kPem},
    KeySpec{.name = "nginx_cert_path",
            .field = &Config::nginx_cert_path,
            .help = "nginx certificate file on the machine, used when nginx_cert is blank (Kasm 1.17+ images)",
            .kind = kPathOrEmpty},
    KeySpec{.name = "nginx_key_path",
            .field = &Config::nginx_key_path,
            .help = "its private key file (read at install time, never shown)",
            .kind = kPathOrEmpty},
    KeySpec{.name = "generate_self_signed",
            .field = &Config::generate_self_signed,
            .help = "make this instance its own certificate",
            .kind = kBool},
    KeySpec{
        .name = "docker_socket", .field = &Config::docker_socket, .help = "Docker Engine API socket", .kind = kPath},
    KeySpec{.name = "docker_start_timeout_seconds",
            .field = &Config::docker_start_timeout_seconds,
            .help = "pre-baked fast path: how long to wait for docker.service to answer",
            .kind = kSeconds},
    KeySpec{.name = "manager_tls_verify",
            .field = &Config::manager_tls_verify,
            .help = "verify the manager's certificate in health checks",
            .kind = kBool},
    KeySpec{.name = "manager_ca",
            .field = &Config::manager_ca,
            .help = "CA bundle for the manager health check",
            .kind = kPathOrEmpty},
    KeySpec{.name = "health_timeout_seconds",
            .field = &Config::health_timeout_seconds,
            .help = "how long to wait for a healthy agent",
            .kind = kSeconds},
    KeySpec{.name = "block_container_metadata",
            .field = &Config::block_container_metadata,
            .help = "drop container traffic to the metadata service (169.254.169.254, fd00:ec2::254) in DOCKER-USER",
            .kind = kBool},
    KeySpec{.name = "state_dir", .field = &Config::state_dir, .help = "state, status and log files", .kind = kPath},
    KeySpec{.name = "console",
            .field = &Config::console,
            .help = "where the one-line summary goes; empty = nowhere",
            .kind = kPathOrEmpty},
    KeySpec{.name = "metrics_file",
            .field = &Config::metrics_file,
            .help = "Prometheus textfile; empty = none",
            .kind = kPathOrEmpty},
};

} // namespace

std::string KeySpec::flag() const {
  std::string f = "--";
  for (char c : name)
    f += c == '_' ? '-' : c;
  return f;
}

std::string KeySpec::env_var() const {
  std::string e = "KASM_BOOTSTRAP_";
  for (char c : name)
    e += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return e;
}

std::string_view KeySpec::value_name() const {
  if (secret()) return "SECRET";
  switch (kind) {
  case kText: return "TEXT";
  case kHost: return "HOST";
  case kUuid: return "UUID";
  case kIpAddress: return "IP";
  case kUrl: return "URL";
  case kSha256: return "SHA256";
  case kSize: return "SIZE";
  case kPath:
  case kPathOrEmpty: return "PATH";
  case kPort: return "PORT";
  case kSeconds: return "SECONDS";
  case kConnections: return "COUNT";
  case kPem: return "PEM";
  case kBool: return "BOOL";
  case kList: return "LIST";
  }
  return "TEXT";
}

std::string KeySpec::default_text() const {
  static const Config defaults;
  return std::visit(
      [](auto member) -> std::string {
        const auto& value = defaults.*member;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::string>)
          return value;
        else if constexpr (std::is_same_v<T, bool>)
          return value ? "true" : "false";
        else if constexpr (std::is_same_v<T, std::int64_t>)
          return std::to_string(value);
        else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string joined;
          for (const auto& item : value)
            joined += (joined.empty() ? "" : ",") + item;
          return joined;
        } else {
          return {}; // a secret has no default to show
        }
      },
      field);
}

std::span<const KeySpec> keys() { return kKeys; }

const KeySpec* find_key(std::string_view name) {
  for (const auto& k : kKeys)
    if (k.name == name) return &k;
  return nullptr;
}

std::string suggest_key(std::string_view unknown) {
  std::string lowered;
  for (char c : unknown)
    lowered += c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    all.reserve(kKeys.size());
    for (const auto& k : kKeys)
      all.emplace_back(k.name);
    return all;
  }();
  return util::closest_match(lowered, names);
}

} // namespace kb::config

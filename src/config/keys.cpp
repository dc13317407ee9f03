#include "kasm_bootstrap/config/keys.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace kb::config {
namespace {

const std::array kKeys = {
    KeySpec{"server_id", &Config::server_id, "Kasm server id of this agent ({server_id})"},
    KeySpec{"manager_address", &Config::manager_address, "manager host or IP: the Zone's Upstream Auth Address"},
    KeySpec{"manager_port", &Config::manager_port, "port of the manager's API (agent config manager.public_port)"},
    KeySpec{"manager_token", &Config::manager_token, "manager token (secret: file, stdin or environment only)"},
    KeySpec{"provider", &Config::provider, "VM provider name passed to the installer ({provider_name})"},
    KeySpec{"server_hostname", &Config::server_hostname, "host name Kasm gave this server"},
    KeySpec{"external_fqdn", &Config::external_fqdn, "public FQDN; wins over detection ('None' = unset)"},
    KeySpec{"agent_address", &Config::agent_address, "explicit agent address; skips detection"},
    KeySpec{"address_sources", &Config::address_sources,
            "detection chain: auto, aws-imds, gcp, azure, oci, digitalocean, route, interface:NAME, first-global"},
    KeySpec{"imds_endpoint", &Config::imds_endpoint, "metadata service base URL"},
    KeySpec{"address_timeout_seconds", &Config::address_timeout_seconds, "time budget for address detection"},
    KeySpec{"swap_size", &Config::swap_size, "auto, off, 0, or a size such as 512M or 8G"},
    KeySpec{"swap_file", &Config::swap_file, "swap file path"},
    KeySpec{"swap_required", &Config::swap_required, "fail the run when swap cannot be made"},
    KeySpec{"release_url", &Config::release_url, "Kasm release tarball URL (https)"},
    KeySpec{"release_sha256", &Config::release_sha256, "SHA-256 of the release tarball"},
    KeySpec{"allow_insecure_http", &Config::allow_insecure_http, "allow a plain http release URL"},
    KeySpec{"cache_dir", &Config::cache_dir, "where verified releases are kept"},
    KeySpec{"ca_bundle", &Config::ca_bundle, "CA bundle for HTTPS; empty = first well-known bundle"},
    KeySpec{"download_timeout_seconds", &Config::download_timeout_seconds, "deadline for the release download"},
    KeySpec{"install_args", &Config::install_args, "extra arguments for install.sh"},
    KeySpec{"lock_timeout_seconds", &Config::lock_timeout_seconds, "how long to wait for apt/dpkg locks"},
    KeySpec{"install_timeout_seconds", &Config::install_timeout_seconds, "deadline for install.sh"},
    KeySpec{"service_images", &Config::service_images, "offline service images tarball for install.sh -s (prebake)"},
    KeySpec{"proxy_port", &Config::proxy_port, "port kasm_proxy listens on (install.sh -L)"},
    KeySpec{"start_timeout_seconds", &Config::start_timeout_seconds,
            "deadline for the release's bin/start (docker compose up)"},
    KeySpec{"nginx_cert", &Config::nginx_cert, "nginx certificate PEM; blank keeps the self-signed one"},
    KeySpec{"nginx_key", &Config::nginx_key, "nginx private key PEM (secret: file, stdin or environment only)"},
    KeySpec{"nginx_cert_path", &Config::nginx_cert_path,
            "nginx certificate file on the machine, used when nginx_cert is blank (Kasm 1.17+ images)"},
    KeySpec{"nginx_key_path", &Config::nginx_key_path, "its private key file (read at install time, never shown)"},
    KeySpec{"generate_self_signed", &Config::generate_self_signed, "make this instance its own certificate"},
    KeySpec{"docker_socket", &Config::docker_socket, "Docker Engine API socket"},
    KeySpec{"docker_start_timeout_seconds", &Config::docker_start_timeout_seconds,
            "pre-baked fast path: how long to wait for docker.service to answer"},
    KeySpec{"manager_tls_verify", &Config::manager_tls_verify, "verify the manager's certificate in health checks"},
    KeySpec{"manager_ca", &Config::manager_ca, "CA bundle for the manager health check"},
    KeySpec{"health_timeout_seconds", &Config::health_timeout_seconds, "how long to wait for a healthy agent"},
    KeySpec{"block_container_metadata", &Config::block_container_metadata,
            "drop container traffic to the metadata service (169.254.169.254, fd00:ec2::254) in DOCKER-USER"},
    KeySpec{"state_dir", &Config::state_dir, "state, status and log files"},
    KeySpec{"console", &Config::console, "where the one-line summary goes; empty = nowhere"},
    KeySpec{"metrics_file", &Config::metrics_file, "Prometheus textfile; empty = none"},
};

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

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
  std::string best;
  std::size_t best_distance = 4; // further than 3 edits is not a typo
  for (const auto& k : kKeys) {
    const auto d = edit_distance(lowered, k.name);
    if (d < best_distance) {
      best_distance = d;
      best = k.name;
    }
  }
  return best;
}

} // namespace kb::config

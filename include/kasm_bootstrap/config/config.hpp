#pragma once
// The resolved configuration: one typed struct, filled from the layers in
// config/loader.hpp. Defaults live in the member initialisers below; the key table in
// config/keys.hpp maps each snake_case key to its member, and is the only list of keys.

#include "kasm_bootstrap/util/secret.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace kb::config {

struct Config {
  // Registration: rendered by Kasm into the startup script.
  std::string server_id;
  std::string manager_address;     // the Zone's Upstream Auth Address (host or IP)
  std::int64_t manager_port = 443; // where the manager's API answers (agent config manager.public_port)
  Secret manager_token;
  std::string provider;
  std::string server_hostname;
  std::string external_fqdn; // empty = none (Kasm renders "None")
  std::string agent_address; // explicit address; skips detection

  // Address detection.
  std::vector<std::string> address_sources{"auto"};
  std::string imds_endpoint = "http://169.254.169.254";
  std::int64_t address_timeout_seconds = 10;

  // Swap.
  std::string swap_size = "auto"; // auto | off | 0 | 512M | 8G
  std::string swap_file = "/var/swap.1";
  bool swap_required = false; // false: a swap failure is a warning

  // Release.
  std::string release_url;
  std::string release_sha256;
  bool allow_insecure_http = false;
  std::string cache_dir = "/var/cache/kasm-bootstrap";
  std::string ca_bundle; // empty = first well-known bundle
  std::int64_t download_timeout_seconds = 1800;
  // Chosen by bench/download.sh: 4 connections fill what a 50 MB/s-per-connection server
  // (S3-like) allows to about 4x one stream, and more gave little on 2 cores.
  std::int64_t download_connections = 4;

  // Installer.
  std::vector<std::string> install_args;
  std::int64_t lock_timeout_seconds = 600;
  std::int64_t install_timeout_seconds = 3600;
  std::string service_images;               // offline service images tarball for install.sh -s (prebake)
  std::int64_t proxy_port = 443;            // kasm_proxy's port: install.sh -L (agent.public_port, compose, nginx)
  std::int64_t start_timeout_seconds = 900; // deadline for the release's bin/start (docker compose up)

  // Certificates.
  std::string nginx_cert; // PEM; empty = keep the installer's self-signed pair
  Secret nginx_key;       // PEM
  // A pair kept on the machine (machine paths), used when nginx_cert is blank: from Kasm
  // 1.17 the startup script carries no pair, so an image names its own here.
  std::string nginx_cert_path;
  std::string nginx_key_path;
  bool generate_self_signed = false;

  // Docker, health and reporting.
  std::string docker_socket = "/var/run/docker.sock";
  std::int64_t docker_start_timeout_seconds = 120; // fast path: docker.service up and answering
  bool manager_tls_verify = true; // self-signed managers are common: false skips it for the health check only
  std::string manager_ca;
  std::int64_t health_timeout_seconds = 120;
  // Drop container traffic to the metadata service (DOCKER-USER; net/metadata_firewall.hpp).
  bool block_container_metadata = true;
  std::string state_dir = "/var/lib/kasm-bootstrap";
  std::string console = "/dev/console";
  std::string metrics_file;
};

} // namespace kb::config

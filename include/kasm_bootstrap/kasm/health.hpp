#pragma once
// Is this agent healthy (docs/kasm-installer.md §8, item 6)? Kasm's containers run (and
// are healthy where their image has a health check) and the manager's health check
// answers. Each check reports its own result and latency; a failing check is a result,
// not an exception, so `kasm-bootstrap health` can show all of them at once.

#include "kasm_bootstrap/config/config.hpp"
#include "kasm_bootstrap/net/docker_client.hpp"
#include "kasm_bootstrap/system/machine.hpp"

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace kb::kasm {

inline constexpr std::array<std::string_view, 2> kAgentContainers = {"kasm_agent", "kasm_proxy"};
inline constexpr std::string_view kManagerCheck = "manager";
// Containers cannot reach the metadata service (only when block_container_metadata is true).
inline constexpr std::string_view kMetadataFirewallCheck = "metadata_fw";

struct HealthCheck {
  std::string name; // "kasm_agent", "kasm_proxy", "manager", "metadata_fw"
  bool ok = false;
  std::string detail; // "running, healthy", "HTTP 503 from https://...", ...
  double latency_ms = 0;
};

struct HealthReport {
  std::vector<HealthCheck> checks;
  bool healthy() const;
  // "kasm_proxy: exited (code 1); manager: ..." for the checks that failed.
  std::string failures() const;
};

nlohmann::json to_json(const HealthReport& report);

// "MANAGER:PORT", an IPv6 address in brackets: what install.sh writes for the network
// sidecar (/var/run/kasm-sidecar/api_hostname; docs/kasm-installer.md §2).
std::string manager_host_port(std::string_view manager_address, std::int64_t port);
// https://MANAGER[:PORT]/api/__healthcheck (no port when it is 443); MANAGER is a host
// name, IPv4 or IPv6 address.
std::string manager_health_url(std::string_view manager_address, std::int64_t port);

HealthCheck check_container(const net::DockerClient& docker, std::string_view name);
HealthCheck check_manager(const config::Config& config, const Machine& machine);
// Our DROP rule for the metadata service in DOCKER-USER: ip, and ip6 where Docker has that chain.
HealthCheck check_metadata_firewall();
// One pass over every check; never throws for an unhealthy or unreachable component.
HealthReport run_health_checks(const config::Config& config, const Machine& machine);

} // namespace kb::kasm

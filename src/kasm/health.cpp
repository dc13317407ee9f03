#include "kasm_bootstrap/kasm/health.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/net/metadata_firewall.hpp"
#include "kasm_bootstrap/util/json_text.hpp"

#include <algorithm>
#include <chrono>

namespace kb::kasm {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::chrono::milliseconds per_check_timeout(const config::Config& config) {
  return std::min<std::chrono::milliseconds>(std::chrono::seconds(config.health_timeout_seconds),
                                             std::chrono::seconds(10));
}

std::string short_body(const std::string& body) {
  std::string text = body.substr(0, 160);
  std::replace_if(
      text.begin(), text.end(), [](unsigned char c) { return c < 0x20 || c >= 0x7f; }, ' ');
  return text;
}

} // namespace

bool HealthReport::healthy() const {
  return !checks.empty() && std::all_of(checks.begin(), checks.end(), [](const HealthCheck& c) { return c.ok; });
}

std::string HealthReport::failures() const {
  std::string out;
  for (const auto& c : checks)
    if (!c.ok) out += (out.empty() ? "" : "; ") + c.name + ": " + c.detail;
  return out;
}

nlohmann::json to_json(const HealthReport& report) {
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& c : report.checks)
    checks.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}, {"latency_ms", c.latency_ms}});
  return {{"healthy", report.healthy()}, {"checks", checks}};
}

std::string manager_host_port(std::string_view manager_address, std::int64_t port) {
  std::string host(manager_address);
  // A bare IPv6 address has several colons and needs brackets before a port can follow.
  if (std::count(host.begin(), host.end(), ':') > 1 && host.front() != '[') host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

std::string manager_health_url(std::string_view manager_address, std::int64_t port) {
  auto host = manager_host_port(manager_address, port);
  if (port == 443) host.resize(host.size() - 4); // https's own port goes unsaid
  return "https://" + host + "/api/__healthcheck";
}

HealthCheck check_container(const net::DockerClient& docker, std::string_view name) {
  HealthCheck check;
  check.name = name;
  const auto start = Clock::now();
  try {
    const auto state = docker.inspect_container(name);
    if (!state) {
      check.detail = "no such container";
    } else {
      check.ok = state->usable();
      check.detail = state->describe();
    }
  } catch (const Error& e) {
    check.detail = e.what();
  }
  check.latency_ms = ms_since(start);
  return check;
}

HealthCheck check_manager(const config::Config& config, const Machine& machine) {
  HealthCheck check;
  check.name = kManagerCheck;
  const auto start = Clock::now();
  net::HttpRequest request;
  request.url = manager_health_url(config.manager_address, config.manager_port);
  request.headers.push_back("Accept: application/json");
  request.connect_timeout = std::min<std::chrono::milliseconds>(per_check_timeout(config), std::chrono::seconds(5));
  request.total_timeout = per_check_timeout(config);
  request.verify_tls = config.manager_tls_verify;
  if (!config.manager_ca.empty())
    request.ca_bundle = machine.fs.host_path(config.manager_ca).string();
  else if (!config.ca_bundle.empty())
    request.ca_bundle = machine.fs.host_path(config.ca_bundle).string();
  const auto response = machine.http.send(request);
  check.latency_ms = ms_since(start);

  if (!response.transport_ok()) {
    check.detail = response.error_message;
    if (response.error == net::TransportError::kTls)
      check.detail += " (give the manager's CA in manager_ca, or set manager_tls_verify to false for this check)";
    return check;
  }
  if (response.status != 200) {
    check.detail =
        "HTTP " + std::to_string(response.status) + " from " + request.url + ": " + short_body(response.body);
    return check;
  }
  if (util::json_too_deep(response.body)) {
    check.detail = request.url + " answered with JSON nested too deep to be a health answer";
    return check;
  }
  try {
    const auto j = nlohmann::json::parse(response.body);
    if (j.is_object() && j.contains("ok") && j["ok"] == true) {
      check.ok = true;
      check.detail = "ok from " + request.url;
    } else {
      check.detail = request.url + " answered without \"ok\": true: " + short_body(response.body);
    }
  } catch (const nlohmann::json::exception&) {
    check.detail = request.url + " answered with something that is not JSON: " + short_body(response.body);
  }
  return check;
}

HealthCheck check_metadata_firewall() {
  HealthCheck check;
  check.name = kMetadataFirewallCheck;
  const auto start = Clock::now();
  try {
    const auto status = net::metadata_block_status();
    check.ok = status.protected_everywhere();
    check.detail = status.ipv4.chain_exists ? status.summary() : net::missing_docker_user_chain_message();
    if (!check.ok)
      check.detail += " (kasm-bootstrap protect-metadata inserts the rule; block_container_metadata=false turns this "
                      "check off)";
  } catch (const Error& e) {
    check.detail = e.what();
  }
  check.latency_ms = ms_since(start);
  return check;
}

HealthReport run_health_checks(const config::Config& config, const Machine& machine) {
  HealthReport report;
  const net::DockerClient docker(machine.http, machine.fs.host_path(config.docker_socket), per_check_timeout(config));
  for (const auto name : kAgentContainers)
    report.checks.push_back(check_container(docker, name));
  report.checks.push_back(check_manager(config, machine));
  if (config.block_container_metadata) report.checks.push_back(check_metadata_firewall());
  return report;
}

} // namespace kb::kasm

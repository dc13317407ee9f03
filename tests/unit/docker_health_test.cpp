// `kasm-bootstrap health` (the real binary) against a REAL Docker Engine and a fake
// manager speaking HTTPS on loopback with a certificate from a test CA.

#include "cert_fixtures.hpp"
#include "docker_world.hpp"

#include "kasm_bootstrap/kasm/health.hpp"

#include <nlohmann/json.hpp>

using namespace kb;
using namespace kb::test;

namespace {

struct HealthWorld {
  TempDir dir;
  CertFactory pki{dir};
  std::filesystem::path root = dir.path() / "root";
  PemPair manager_pair = pki.self_signed("manager", "127.0.0.1", "IP:127.0.0.1");

  HealthWorld() {
    std::filesystem::create_directories(root / "var/run");
    dir.write("root/etc/kasm-bootstrap/manager-ca.pem", manager_pair.cert);
  }
  std::unique_ptr<FakeServer> manager(const std::string& mode) {
    return std::make_unique<FakeServer>(
        "fake_manager_health.py",
        std::vector<std::string>{"--cert", pki.path("manager.crt"), "--key", pki.path("manager.key"), "--mode", mode});
  }
  // The metadata_fw check is off: this dockerd runs without iptables in the host's
  // namespace, and that check has its own tests (metadata_firewall_test.cpp, e2e_run).
  RunResult health(const FakeServer& manager, const std::vector<std::string>& extra = {},
                   std::map<std::string, std::string> env = {}) {
    std::vector<std::string> args{"health", "--root", root.string(), "--manager-address",
                                  "127.0.0.1:" + std::to_string(manager.port())};
    args.insert(args.end(), extra.begin(), extra.end());
    env.emplace("KASM_BOOTSTRAP_BLOCK_CONTAINER_METADATA", "false");
    return run_binary(args, env);
  }
};

const nlohmann::json* find_check(const nlohmann::json& doc, const std::string& name) {
  for (const auto& c : doc["checks"])
    if (c["name"] == name) return &c;
  return nullptr;
}

} // namespace

TEST_CASE("health: healthy agent, then a stopped container and a failing manager", "[docker][health]") {
  KB_REQUIRE_DOCKER_WORLD();
  DockerWorld world;
  HealthWorld h;
  world.link_socket_into(h.root);
  world.run_proxy();
  world.run_agent({"--health-cmd", "true", "--health-interval", "1s"});
  REQUIRE(world.wait_for("kasm_agent", "{{.State.Health.Status}}", "healthy"));
  auto manager = h.manager("ok");

  const auto ok = h.health(*manager, {"--manager-ca", "/etc/kasm-bootstrap/manager-ca.pem", "--output", "json"});
  INFO(ok.out + ok.err);
  REQUIRE(ok.exit_code == 0);
  const auto doc = nlohmann::json::parse(ok.out);
  CHECK(doc["command"] == "health");
  CHECK(doc["healthy"] == true);
  REQUIRE(doc["checks"].size() == 3);
  for (const char* name : {"kasm_agent", "kasm_proxy", "manager"}) {
    const auto* c = find_check(doc, name);
    REQUIRE(c);
    CHECK((*c)["ok"] == true);
    CHECK((*c)["latency_ms"].get<double>() > 0);
  }
  CHECK((*find_check(doc, "kasm_agent"))["detail"] == "running, healthy");
  CHECK(manager->log().find("GET /api/__healthcheck -> 200") != std::string::npos);

  SECTION("the manager's certificate is verified unless told otherwise") {
    const auto unverified = h.health(*manager);
    CHECK(unverified.exit_code == 10);
    CHECK(unverified.out.find("manager_ca") != std::string::npos);
    const auto skipped = h.health(*manager, {}, {{"KASM_BOOTSTRAP_MANAGER_TLS_VERIFY", "false"}});
    CHECK(skipped.exit_code == 0);
  }
  SECTION("a stopped agent container fails the check in text output") {
    world.docker({"stop", "-t", "1", "kasm_agent"});
    const auto bad = h.health(*manager, {"--manager-ca", "/etc/kasm-bootstrap/manager-ca.pem"});
    INFO(bad.out + bad.err);
    CHECK(bad.exit_code == 10);
    CHECK(bad.out.find("kasm_agent   FAIL") != std::string::npos);
    CHECK(bad.out.find("exited (code ") != std::string::npos);
    CHECK(bad.out.find("kasm_proxy   ok") != std::string::npos);
    CHECK(bad.out.find("UNHEALTHY (kasm_agent: exited") != std::string::npos);
  }
  SECTION("a stopped container without a health check fails the check too") {
    // kasm_proxy has no health check (like Kasm's proxy): only its state can say it is down.
    REQUIRE(world.docker({"inspect", "-f", "{{.State.Health}}", "kasm_proxy"}).find("<nil>") != std::string::npos);
    world.docker({"stop", "-t", "1", "kasm_proxy"});
    const auto bad = h.health(*manager, {"--manager-ca", "/etc/kasm-bootstrap/manager-ca.pem", "--output", "json"});
    INFO(bad.out + bad.err);
    CHECK(bad.exit_code == 10);
    const auto d = nlohmann::json::parse(bad.out);
    CHECK(d["healthy"] == false);
    const auto* proxy = find_check(d, "kasm_proxy");
    REQUIRE(proxy);
    CHECK((*proxy)["ok"] == false);
    CHECK((*proxy)["detail"].get<std::string>().find("exited") != std::string::npos);
    CHECK((*find_check(d, "kasm_agent"))["ok"] == true);
  }
  SECTION("a manager that is not ok, or not JSON, fails the check") {
    for (const auto& [mode, expect] : std::vector<std::pair<std::string, std::string>>{
             {"notok", "without \\\"ok\\\": true"}, {"500", "HTTP 500"}, {"notjson", "not JSON"}}) {
      auto broken = h.manager(mode);
      const auto r = h.health(*broken, {"--manager-ca", "/etc/kasm-bootstrap/manager-ca.pem", "--output", "json"});
      INFO(mode << ": " << r.out << r.err);
      CHECK(r.exit_code == 10);
      const auto d = nlohmann::json::parse(r.out);
      CHECK(d["healthy"] == false);
      CHECK((*find_check(d, "manager"))["ok"] == false);
      CHECK(r.out.find(expect) != std::string::npos);
    }
  }
}

TEST_CASE("health: no Docker Engine is reported per check, not as a crash", "[health]") {
  HealthWorld h;
  auto manager = h.manager("ok");
  const auto r = h.health(*manager, {"--manager-ca", "/etc/kasm-bootstrap/manager-ca.pem", "--output", "json"});
  INFO(r.out + r.err);
  CHECK(r.exit_code == 10);
  const auto d = nlohmann::json::parse(r.out);
  CHECK((*find_check(d, "manager"))["ok"] == true);
  const auto& agent = *find_check(d, "kasm_agent");
  CHECK(agent["ok"] == false);
  CHECK(agent["detail"].get<std::string>().find("does not exist (is Docker installed and running?)") !=
        std::string::npos);
}

TEST_CASE("health: manager URL forms", "[health]") {
  CHECK(kasm::manager_health_url("manager.example.com", 443) == "https://manager.example.com/api/__healthcheck");
  CHECK(kasm::manager_health_url("10.0.0.5", 8443) == "https://10.0.0.5:8443/api/__healthcheck");
  CHECK(kasm::manager_health_url("fd00::5", 443) == "https://[fd00::5]/api/__healthcheck");
  CHECK(kasm::manager_health_url("fd00::5", 8443) == "https://[fd00::5]:8443/api/__healthcheck");
  CHECK(kasm::manager_host_port("manager.example.com", 443) == "manager.example.com:443");
  CHECK(kasm::manager_host_port("fd00::5", 8443) == "[fd00::5]:8443");
}

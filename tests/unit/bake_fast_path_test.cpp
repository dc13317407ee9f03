// The pre-baked fast path end to end with the real binary against a REAL Docker Engine
// (tests/fakes/docker_world.sh): `prebake` a root with the fake release (install.sh -D -N
// creates Kasm's networks and no container), then `run` with fresh registration values:
// bin/start creates the containers with compose, and a fake manager answers over HTTPS.
// Systemd is not in charge under a test root, so ensure-docker only waits for the socket
// (the sd-bus path has its own test in bake_systemd_test.cpp). The proxy listens on a
// port of its own (proxy_port, install.sh -L).

#include "bake_fixture.hpp"
#include "cert_fixtures.hpp"
#include "docker_world.hpp"

#include "kasm_bootstrap/kasm/certificates.hpp"
#include "kasm_bootstrap/system/accounts.hpp"

#include <yaml-cpp/yaml.h>

#include <sys/stat.h>

using namespace kb;
using namespace kb::test;
namespace fs = std::filesystem;

namespace {

const std::string kFastPathToken = "tok-fast-path-3b9e71c2d4";
const std::string kServerId = "7c1d9e20-2a3b-4c5d-8e9f-0a1b2c3d4e5f";

std::string outcome_of(const nlohmann::json& report, const std::string& id) {
  for (const auto& s : report["steps"])
    if (s["id"] == id) return s["outcome"];
  return "(absent)";
}

} // namespace

TEST_CASE("fast path: a baked root becomes a healthy agent without download or installer", "[bake][docker]") {
  KB_REQUIRE_DOCKER_WORLD();
  BakeFixture f;
  // Its own namespace: the fake installer creates Kasm's two networks (bridges), and
  // compose publishes the proxy's port.
  DockerWorld world(DockerNetwork::kOwnNamespace);
  world.link_socket_into(f.root);
  const auto proxy_port = std::to_string(free_tcp_port());
  const auto baked = f.prebake({"--proxy-port", proxy_port}, true);
  INFO(baked.out + baked.err);
  REQUIRE(baked.exit_code == 0);
  const auto manifest = f.manifest();
  const auto baked_yaml = YAML::LoadFile(f.agent_yaml().string());
  REQUIRE(f.server.gets().size() == 1);
  // install.sh -D leaves no container (docs/kasm-installer.md §2).
  CHECK(world.docker({"ps", "-aq"}).empty());

  CertFactory pki(f.dir);
  const auto manager_pair = pki.self_signed("manager", "127.0.0.1", "IP:127.0.0.1");
  f.dir.write("root/etc/kasm-bootstrap/manager-ca.pem", manager_pair.cert);
  FakeServer manager("fake_manager_health.py", {"--cert", pki.path("manager.crt"), "--key", pki.path("manager.key")});

  std::vector<std::string> args{"run",
                                "--server-id",
                                kServerId,
                                "--manager-address",
                                "127.0.0.1",
                                "--manager-port",
                                std::to_string(manager.port()),
                                "--proxy-port",
                                proxy_port,
                                "--agent-address",
                                "10.20.30.40",
                                "--provider",
                                "aws",
                                "--swap-size",
                                "off",
                                "--manager-ca",
                                "/etc/kasm-bootstrap/manager-ca.pem",
                                "--health-timeout-seconds",
                                "60",
                                "--output",
                                "json"};
  const auto release = f.release_args();
  args.insert(args.end(), release.begin(), release.end());
  // The binary runs in the host's namespace, whose netfilter is not this test's to change
  // (metadata_firewall_test.cpp is): the block is turned off.
  args.insert(args.end(), {"--block-container-metadata", "false"});
  auto env = f.env_with_docker();
  env["KASM_BOOTSTRAP_MANAGER_TOKEN"] = kFastPathToken;

  const auto r = run_binary(args, env);
  INFO(r.out + r.err);
  REQUIRE(r.exit_code == 0);
  const auto report = nlohmann::json::parse(r.out);
  CHECK(report["result"] == "success");
  // dockerd already answers here, so ensure-docker finds nothing to do.
  CHECK(outcome_of(report, "ensure-docker") == "satisfied");
  for (const char* id : {"configure-agent", "install-certificates", "start-services", "verify-health"})
    CHECK(outcome_of(report, id) == "done");
  CHECK(outcome_of(report, "install-agent") == "(absent)");
  CHECK(outcome_of(report, "block-metadata") == "satisfied"); // turned off: nothing to do
  CHECK(outcome_of(report, "fetch-release") == "(absent)");
  CHECK(r.out.find(kFastPathToken) == std::string::npos);
  CHECK(r.err.find(kFastPathToken) == std::string::npos);
  CHECK(read_file(f.root / "var/lib/kasm-bootstrap/kasm-bootstrap.log").find(kFastPathToken) == std::string::npos);
  // The token came through our environment; bin/start's environment and command line lack it.
  CHECK(read_file(f.root / "fake-installer/start.env").find("KASM_FAKE_ROOT=") != std::string::npos);
  CHECK(read_file(f.root / "fake-installer/start.env").find(kFastPathToken) == std::string::npos);
  CHECK(read_file(f.root / "fake-installer/start.argv").find(kFastPathToken) == std::string::npos);

  // No download and no installer: the release server saw only prebake's GET.
  CHECK(f.server.gets().size() == 1);
  CHECK(f.installer_runs() == 1);

  // Exactly the registration keys, with this instance's values.
  const auto yaml = YAML::LoadFile(f.agent_yaml().string());
  CHECK(yaml["agent"]["server_id"].as<std::string>() == kServerId);
  CHECK(yaml["agent"]["public_hostname"].as<std::string>() == "10.20.30.40");
  CHECK(yaml["agent"]["provider"].as<std::string>() == "aws");
  REQUIRE(yaml["manager"]["hostnames"].size() == 1);
  CHECK(yaml["manager"]["hostnames"][0].as<std::string>() == "127.0.0.1");
  CHECK(yaml["manager"]["token"].as<std::string>() == kFastPathToken);
  CHECK(yaml["manager"]["public_port"].as<int>() == manager.port());
  CHECK(yaml["agent"]["public_port"].as<std::string>() == proxy_port);
  CHECK(yaml.size() == baked_yaml.size());
  CHECK(yaml["agent"].size() == baked_yaml["agent"].size());
  CHECK(yaml["manager"].size() == baked_yaml["manager"].size());

  // This instance's own pair, not the one baked into the image.
  const auto cert = read_file(f.install_dir() / "certs/kasm_nginx.crt");
  const auto key = read_file(f.install_dir() / "certs/kasm_nginx.key");
  const auto leaf = kasm::summarize_certificate(cert);
  REQUIRE(leaf);
  CHECK(leaf->sha256 != manifest["baked_cert_sha256"].get<std::string>());
  CHECK(leaf->organization == kasm::kGeneratedOrganization);
  CHECK(kasm::check_certificate_pair(cert, key, {"10.20.30.40"}).ok());
  struct stat st {};
  REQUIRE(::stat((f.install_dir() / "certs/kasm_nginx.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  const auto owner = sys::resolve_owner(sys::RootFs(f.root), "kasm", ExitCode::kInternal);
  CHECK(st.st_uid == owner.uid);

  // Created by the release's bin/start (compose project "docker"), and the manager was asked.
  CHECK(world.docker({"inspect", "-f", "{{index .Config.Labels \"com.docker.compose.project\"}}", "kasm_proxy"}) ==
        "docker\n");
  CHECK(world.wait_for("kasm_agent", "{{.State.Running}}", "true", std::chrono::seconds(5)));
  CHECK(world.wait_for("kasm_proxy", "{{.State.Running}}", "true", std::chrono::seconds(5)));
  CHECK(manager.log().find("GET /api/__healthcheck -> 200") != std::string::npos);

  SECTION("a second run changes nothing") {
    const auto yaml_text = read_file(f.agent_yaml());
    const auto again = run_binary(args, env);
    INFO(again.out + again.err);
    REQUIRE(again.exit_code == 0);
    const auto second = nlohmann::json::parse(again.out);
    for (const char* id : {"configure-agent", "install-certificates", "start-services"})
      CHECK(outcome_of(second, id) != "done");
    CHECK(read_file(f.agent_yaml()) == yaml_text);
    CHECK(read_file(f.install_dir() / "certs/kasm_nginx.crt") == cert);
    CHECK(f.server.gets().size() == 1);
  }
  SECTION("containers already running are fine (304)") {
    const auto forced = run_binary(
        [&] {
          auto a = args;
          a.push_back("--force");
          return a;
        }(),
        env);
    INFO(forced.out + forced.err);
    CHECK(forced.exit_code == 0);
    CHECK(f.installer_runs() == 1);
  }
}

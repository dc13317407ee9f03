// configure-agent's rewrite of agent.app.config.yaml: exactly the registration keys
// change, every other key keeps its value, the file becomes 0600 owned by kasm, and bad
// input is refused with a message that names the file.

#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/agent_config.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"

#include <yaml-cpp/yaml.h>

#include <sys/stat.h>
#include <unistd.h>

using namespace kb;
using namespace kb::test;
namespace fs = std::filesystem;

namespace {

const std::string kYamlToken = "tok-bake-yaml-9c1d7e5a";
const char* kPath = "/opt/kasm/1.15.0/conf/app/agent.app.config.yaml";

// What install.sh -D leaves (its sed lines: unquoted values, a flow list, a double-quoted
// token; docs/kasm-installer.md §2), plus keys a real agent config carries beside them.
const std::string kBaked = R"(agent:
  server_id: 00000000-0000-0000-0000-000000000000
  public_hostname: placeholder.kasm-bootstrap.invalid
  provider: hardware
  public_port: 443
  auto_prune_images: true
  docker_reserved_memory_mb: 1024
  listen_port: 4444
manager:
  hostnames: ['placeholder-manager.kasm-bootstrap.invalid']
  public_port: 443
  token: "placeholder-0123"
  api_timeout_seconds: 30
logging:
  level: info
  handlers: [stream, file]
)";

kasm::AgentRegistration registration(const Secret& token) {
  return {"5b3c2a10-1f2e-4d5c-9b8a-7e6f5d4c3b2a", "10.20.30.40", "aws", {"manager.example.test"}, &token, 8443, 9443};
}

std::string dump(const YAML::Node& n) { return YAML::Dump(n); }

} // namespace

TEST_CASE("agent config: exactly the registration keys change", "[bake][yaml]") {
  const Secret token(kYamlToken);
  const auto r = registration(token);
  CHECK_FALSE(kasm::agent_config_matches(kBaked, r, kPath));

  const auto text = kasm::rewrite_agent_config(kBaked, r, kPath);
  const auto before = YAML::Load(kBaked);
  const auto after = YAML::Load(text);

  CHECK(after["agent"]["server_id"].as<std::string>() == "5b3c2a10-1f2e-4d5c-9b8a-7e6f5d4c3b2a");
  CHECK(after["agent"]["public_hostname"].as<std::string>() == "10.20.30.40");
  CHECK(after["agent"]["provider"].as<std::string>() == "aws");
  REQUIRE(after["manager"]["hostnames"].IsSequence());
  REQUIRE(after["manager"]["hostnames"].size() == 1);
  CHECK(after["manager"]["hostnames"][0].as<std::string>() == "manager.example.test");
  CHECK(after["manager"]["token"].as<std::string>() == kYamlToken);
  CHECK(after["agent"]["public_port"].as<int>() == 8443);
  CHECK(after["manager"]["public_port"].as<int>() == 9443);

  // Every other key: same keys, same values, same types.
  CHECK(after.size() == before.size());
  CHECK(dump(after["logging"]) == dump(before["logging"]));
  CHECK(after["agent"].size() == before["agent"].size());
  CHECK(after["manager"].size() == before["manager"].size());
  for (const char* key : {"auto_prune_images", "docker_reserved_memory_mb", "listen_port"})
    CHECK(dump(after["agent"][key]) == dump(before["agent"][key]));
  CHECK(after["agent"]["auto_prune_images"].as<bool>() == true);
  CHECK(after["agent"]["listen_port"].as<int>() == 4444);
  CHECK(dump(after["manager"]["api_timeout_seconds"]) == dump(before["manager"]["api_timeout_seconds"]));

  CHECK(kasm::agent_config_matches(text, r, kPath));
  // Rewriting again changes nothing.
  CHECK(kasm::rewrite_agent_config(text, r, kPath) == text);

  SECTION("no provider configured: the release's value stays, as install.sh without -r leaves it") {
    auto without = r;
    without.provider.clear();
    const auto kept = YAML::Load(kasm::rewrite_agent_config(kBaked, without, kPath));
    CHECK(kept["agent"]["provider"].as<std::string>() == "hardware");
    CHECK(kasm::agent_config_matches(kasm::rewrite_agent_config(kBaked, without, kPath), without, kPath));
  }
  SECTION("a port that differs is not a match") {
    auto other = r;
    other.manager_public_port = 443;
    CHECK_FALSE(kasm::agent_config_matches(text, other, kPath));
  }
}

TEST_CASE("agent config: bad or foreign YAML is refused with the file and the reason", "[bake][yaml]") {
  const Secret token(kYamlToken);
  const auto r = registration(token);
  auto error_of = [&](const std::string& text) -> std::string {
    try {
      kasm::rewrite_agent_config(text, r, kPath);
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::kInstall);
      return e.what();
    }
    return "(no error)";
  };
  const auto broken = error_of("agent:\n  server_id: [a, b\nmanager: {}\n");
  CHECK(broken.find(kPath) != std::string::npos);
  INFO(broken);
  CHECK(broken.find("is not valid YAML (line 3, column 8): end of sequence flow not found") != std::string::npos);

  CHECK(error_of("- just\n- a list\n").find("is not a YAML mapping") != std::string::npos);
  const auto no_manager = error_of("agent:\n  server_id: a\n");
  CHECK(no_manager.find("has no 'manager' mapping") != std::string::npos);
  CHECK(error_of("agent: 3\nmanager: {}\n").find("has no 'agent' mapping") != std::string::npos);
  CHECK(error_of("").find("is not a YAML mapping") != std::string::npos);
}

TEST_CASE("agent config file: rewritten atomically, mode 0600, owned by the given owner", "[bake][yaml]") {
  TempDir root;
  const sys::RootFs fs(root.path());
  const auto host = root.write(std::string(kPath).substr(1), kBaked);
  REQUIRE(::chmod(host.c_str(), 0640) == 0);
  const bool can_chown = ::geteuid() == 0;
  if (can_chown) REQUIRE(::chown(host.c_str(), 1234, 1235) == 0);

  const Secret token(kYamlToken);
  const sys::FileOwner kasm_user{can_chown ? 1500u : ::geteuid(), can_chown ? 1501u : ::getegid()};
  kasm::rewrite_agent_config_file(fs, kPath, registration(token), kasm_user);

  struct stat st {};
  REQUIRE(::stat(host.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600); // it holds the token
  CHECK(st.st_uid == kasm_user.uid);
  CHECK(st.st_gid == kasm_user.gid);
  CHECK(YAML::LoadFile(host.string())["manager"]["token"].as<std::string>() == kYamlToken);
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(host.parent_path()))
    ++entries;
  CHECK(entries == 1); // no temporary file left beside it

  SECTION("a missing file is an error naming it") {
    try {
      kasm::rewrite_agent_config_file(fs, "/opt/kasm/9.9.9/conf/app/agent.app.config.yaml", registration(token),
                                      kasm_user);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("/opt/kasm/9.9.9/conf/app/agent.app.config.yaml does not exist") !=
            std::string::npos);
    }
  }
  SECTION("damaged YAML leaves the file as it was") {
    root.write(std::string(kPath).substr(1), "agent: [\n");
    CHECK_THROWS_AS(kasm::rewrite_agent_config_file(fs, kPath, registration(token), kasm_user), Error);
    CHECK(read_file(host) == "agent: [\n");
  }
}

// Choosing between the pre-baked fast path and the full install: a valid bake of the
// configured release takes the fast path; a missing manifest is a plain image; a damaged
// or mismatched bake falls back to the full plan and says why (library and CLI).

#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/bake_manifest.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

#include <nlohmann/json.hpp>

#include <cctype>

using namespace kb;
using namespace kb::test;
namespace fs = std::filesystem;

namespace {

const std::string kSha = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const std::string kOtherSha = "1111111111111111111111111111111111111111111111111111111111111111";

const std::string kYaml = "agent:\n  server_id: '0'\n  public_hostname: p\n  provider: p\nmanager:\n  hostnames:\n"
                          "  - m\n  token: t\n";

// A root as `prebake` leaves it, written by hand so these tests need no installer.
struct BakedRoot {
  TempDir root;
  sys::RootFs fs{root.path()};
  BakedRoot() {
    root.write("opt/kasm/1.15.0/conf/app/agent.app.config.yaml", kYaml);
    fs::create_directory_symlink("1.15.0", root.path() / "opt/kasm/current");
    kasm::BakeManifest m;
    m.release_version = "1.15.0";
    m.release_sha256 = kSha;
    m.release_url = "https://example.test/kasm_release_1.15.0.tar.gz";
    m.install_dir = "/opt/kasm/1.15.0";
    m.agent_config = "/opt/kasm/1.15.0/conf/app/agent.app.config.yaml";
    m.baked_at = "2026-11-28T22:00:00Z";
    kasm::write_bake_manifest(fs, m);
  }
  config::Config config(const std::string& sha = kSha) const {
    config::Config c;
    c.release_sha256 = sha;
    return c;
  }
};

std::vector<std::string> ids(const plan::Plan& p) {
  std::vector<std::string> out;
  for (auto* s : p.order())
    out.emplace_back(s->id());
  return out;
}

} // namespace

TEST_CASE("bake manifest: round trip and refusal of damaged documents", "[bake]") {
  BakedRoot b;
  const auto text = read_file(b.root.path() / "etc/kasm-bootstrap/bake.json");
  const auto m = kasm::parse_bake_manifest(text);
  CHECK(m.release_version == "1.15.0");
  CHECK(m.release_sha256 == kSha);
  CHECK(m.install_dir == "/opt/kasm/1.15.0");
  CHECK(kasm::to_json(m) == nlohmann::json::parse(text));

  auto error_of = [](const std::string& doc) -> std::string {
    try {
      kasm::parse_bake_manifest(doc);
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::kState);
      return e.what();
    }
    return "(no error)";
  };
  CHECK(error_of("{not json").find("is not JSON") != std::string::npos);
  CHECK(error_of(R"({"format": 1e999})").find("is not JSON") != std::string::npos); // out_of_range, not parse_error
  CHECK(error_of("[]").find("not a JSON object") != std::string::npos);
  CHECK(error_of(R"({"format": 2})").find("format 2") != std::string::npos);
  CHECK(error_of(R"({"format": 1, "release_version": "1"})").find("no \"release_sha256\"") != std::string::npos);
  auto j = nlohmann::json::parse(text);
  j["install_dir"] = "/opt/kasm/../../etc";
  CHECK(error_of(j.dump()).find("without '..'") != std::string::npos);
  j = nlohmann::json::parse(text);
  j["release_version"] = 115;
  CHECK(error_of(j.dump()).find("\"release_version\" is not a string") != std::string::npos);
}

TEST_CASE("bake: a valid bake of the configured release takes the fast path", "[bake]") {
  BakedRoot b;
  const auto v = kasm::inspect_bake(b.fs, b.config());
  CHECK(v.state == kasm::BakeState::kUsable);
  CHECK(v.reason.find("baked release 1.15.0") != std::string::npos);

  // Upper-case configured checksum is the same checksum.
  std::string upper = kSha;
  for (auto& ch : upper)
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  auto choice = steps::choose_bootstrap_plan(b.fs, b.config(upper));
  CHECK(choice.path == "fast");
  CHECK_FALSE(choice.warn);
  CHECK(ids(choice.plan) == std::vector<std::string>{"preflight", "detect-address", "ensure-swap", "ensure-docker",
                                                     "check-manager", "configure-agent", "install-certificates",
                                                     "start-services", "block-metadata", "verify-health"});
  const auto deps = choice.plan.find("verify-health")->depends_on();
  CHECK(std::vector<std::string>(deps.begin(), deps.end()) ==
        std::vector<std::string>{"start-services", "block-metadata"});
  // The metadata block needs Docker's chain, so it follows the started containers.
  const auto block = choice.plan.find("block-metadata")->depends_on();
  CHECK(std::vector<std::string>(block.begin(), block.end()) == std::vector<std::string>{"start-services"});
  for (auto* s : choice.plan.order()) {
    CHECK(s->id() != "fetch-release");
    CHECK(s->id() != "install-agent");
  }
}

TEST_CASE("bake: no manifest, a mismatch or a damaged bake choose the full plan", "[bake]") {
  SECTION("plain image: no warning") {
    TempDir root;
    const sys::RootFs fs(root.path());
    config::Config c;
    c.release_sha256 = kSha;
    auto choice = steps::choose_bootstrap_plan(fs, c);
    CHECK(choice.path == "full");
    CHECK_FALSE(choice.warn);
    CHECK(choice.reason.find("no bake manifest") != std::string::npos);
    CHECK(choice.plan.find("install-agent") != nullptr);
  }
  BakedRoot b;
  std::string expect;
  config::Config c = b.config();
  SECTION("another release configured") {
    c = b.config(kOtherSha);
    expect = "the image baked release 1.15.0 (sha256 0f1e2d3c4b5a...) but release_sha256 is 111111111111...";
  }
  SECTION("another proxy port configured than the one baked (install.sh -L)") {
    c.proxy_port = 8443;
    expect = "the image baked kasm_proxy's port 443 but proxy_port is 8443";
  }
  SECTION("manifest unreadable") {
    b.root.write("etc/kasm-bootstrap/bake.json", "{\"format\": 1,");
    expect = "bake.json is damaged: bake manifest is not JSON";
  }
  SECTION("agent config missing") {
    fs::remove(b.root.path() / "opt/kasm/1.15.0/conf/app/agent.app.config.yaml");
    expect = "the baked agent configuration /opt/kasm/1.15.0/conf/app/agent.app.config.yaml is missing";
  }
  SECTION("agent config damaged") {
    b.root.write("opt/kasm/1.15.0/conf/app/agent.app.config.yaml", "agent: [\n");
    expect = "is not valid YAML";
  }
  SECTION("install dir gone") {
    fs::remove_all(b.root.path() / "opt/kasm/1.15.0");
    expect = "the baked install dir /opt/kasm/1.15.0 is missing";
  }
  if (expect.empty()) return;
  auto choice = steps::choose_bootstrap_plan(b.fs, c);
  INFO(choice.reason);
  CHECK(choice.path == "full");
  CHECK(choice.warn);
  CHECK(choice.reason.find(expect) != std::string::npos);
  CHECK(choice.reason.find("falling back to the full install") != std::string::npos);
  CHECK(choice.plan.find("install-agent") != nullptr);
  CHECK(choice.plan.find("fetch-release") != nullptr);
}

TEST_CASE("bake: plan shows which path was chosen and why", "[bake][cli]") {
  BakedRoot b;
  const std::vector<std::string> base{"plan",
                                      "--root",
                                      b.root.path().string(),
                                      "--server-id",
                                      "5b3c2a10-1f2e-4d5c-9b8a-7e6f5d4c3b2a",
                                      "--manager-address",
                                      "manager.example.test",
                                      "--agent-address",
                                      "10.20.30.40",
                                      "--release-url",
                                      "https://example.test/kasm_release_1.15.0.tar.gz"};
  const std::map<std::string, std::string> env{{"KASM_BOOTSTRAP_MANAGER_TOKEN", "tok-bake-plan-4e2a"}};
  auto with = [&](std::vector<std::string> extra) {
    auto args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };

  const auto fast = run_binary(with({"--release-sha256", kSha, "--output", "json"}), env);
  INFO(fast.out + fast.err);
  REQUIRE(fast.exit_code == 0);
  const auto doc = nlohmann::json::parse(fast.out);
  CHECK(doc["path"]["chosen"] == "fast");
  CHECK(doc["path"]["reason"].get<std::string>().find("baked release 1.15.0") != std::string::npos);
  bool has_configure = false;
  for (const auto& s : doc["steps"])
    has_configure = has_configure || s["id"] == "configure-agent";
  CHECK(has_configure);
  CHECK(fast.out.find("tok-bake-plan-4e2a") == std::string::npos);

  const auto text = run_binary(with({"--release-sha256", kSha}), env);
  CHECK(text.out.find("path: fast (baked release 1.15.0") != std::string::npos);
  CHECK(text.out.find("token ****") != std::string::npos);
  CHECK(text.out.find("tok-bake-plan-4e2a") == std::string::npos);

  const auto full = run_binary(with({"--release-sha256", kOtherSha}), env);
  INFO(full.out + full.err);
  REQUIRE(full.exit_code == 0);
  CHECK(full.out.find("path: full (the image baked release 1.15.0") != std::string::npos);
  CHECK(full.err.find("falling back to the full install") != std::string::npos);
  CHECK(full.out.find("install-agent") != std::string::npos);
}

// The real binary, end to end on the command line: exit codes, JSON output, secrets
// refused as flags, dry runs that change nothing, and a planted secret that must not
// appear on any channel (stdout, stderr, log file, status and state files).

#include "cert_fixtures.hpp"
#include "test_support.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <sstream>

using kb::test::run_binary;
using kb::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kPlantedToken = "PLANTED-token-7f3a9c1e5b2d4f6a8c0e";
// A real key pair made by openssl for each test that needs one; its body lines are what
// a leak would show.
struct PlantedPair {
  std::string cert, key, body1, body2;
};
PlantedPair planted_pair(const TempDir& dir) {
  kb::test::CertFactory certs(dir);
  const auto pair = certs.self_signed("planted", "10.1.2.3", "IP:10.1.2.3");
  PlantedPair p{pair.cert, pair.key, {}, {}};
  std::istringstream lines(pair.key);
  std::string line;
  std::vector<std::string> body;
  while (std::getline(lines, line))
    if (line.rfind("-----", 0) != 0) body.push_back(line);
  p.body1 = body.at(1);
  p.body2 = body.at(body.size() - 2);
  return p;
}

std::string config_json() {
  nlohmann::json j{{"server_id", "3f6c2a4e-9b1d-4c57-a8e2-6d0f1b7c9e21"},
                   {"manager_address", "127.0.0.1:9"}, // loopback discard port: nothing leaves this machine
                   {"manager_token", kPlantedToken},
                   {"provider", "aws"},
                   {"agent_address", "10.1.2.3"},
                   {"release_url", "https://127.0.0.1:9/kasm_release.tar.gz"},
                   {"swap_size", "off"},
                   {"download_timeout_seconds", 5},
                   {"release_sha256", std::string(64, 'a')},
                   {"console", ""}};
  return j.dump();
}

// Path -> (mode, size, mtime, content) of everything under `dir`.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    std::string entry = std::to_string(st.st_mode) + " " + std::to_string(st.st_size) + " " +
                        std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    if (e.is_regular_file()) entry += " " + kb::test::read_file(e.path());
    out[fs::relative(e.path(), dir).string()] = entry;
  }
  return out;
}

void require_no_secret(const std::string& channel, const std::string& text, const PlantedPair* pair = nullptr) {
  INFO("channel: " << channel);
  CHECK(text.find(kPlantedToken) == std::string::npos);
  if (pair) {
    CHECK(text.find(pair->body1) == std::string::npos);
    CHECK(text.find(pair->body2) == std::string::npos);
  }
}

} // namespace

TEST_CASE("version and help work on every command", "[cli]") {
  const auto v = run_binary({"--version"});
  CHECK(v.exit_code == 0);
  CHECK(v.out.find("kasm-bootstrap ") == 0);
  for (const char* cmd : {"run", "plan", "detect-address", "swap", "health", "protect-metadata"}) {
    const auto h = run_binary({cmd, "--help"});
    INFO(cmd);
    CHECK(h.exit_code == 0);
    CHECK(h.out.find("--root") != std::string::npos);
  }
  CHECK(run_binary({"frobnicate"}).exit_code == 2);
  CHECK(run_binary({}).exit_code == 2);
}

TEST_CASE("secrets are refused as flag values without echoing them", "[cli][secrets]") {
  TempDir root;
  const auto r = run_binary({"plan", "--root", root.path().string(), "--manager-token", kPlantedToken});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--manager-token-file") != std::string::npos);
  CHECK(r.err.find("process list") != std::string::npos);
  require_no_secret("stderr", r.err);
  require_no_secret("stdout", r.out);
  const auto k = run_binary({"plan", "--root", root.path().string(), "--nginx-key", "x"});
  CHECK(k.exit_code == 2);
}

TEST_CASE("an invalid configuration exits 3 and itemises problems, as text and as JSON", "[cli]") {
  TempDir root;
  const auto cfg = root.write("c.json", R"({"server_id": "{server_id}", "manager_address": "$request_host$"})");
  const auto text = run_binary({"plan", "--root", root.path().string(), "--config", cfg.string()});
  CHECK(text.exit_code == 3);
  CHECK(text.err.find("not rendered by Kasm") != std::string::npos);
  CHECK(text.err.find("Upstream Auth Address") != std::string::npos);
  CHECK(text.err.find("nothing was changed") != std::string::npos);

  const auto json = run_binary({"plan", "--root", root.path().string(), "--config", cfg.string(), "-o", "json"});
  CHECK(json.exit_code == 3);
  const auto doc = nlohmann::json::parse(json.out);
  CHECK(doc["result"] == "invalid-config");
  CHECK(doc["problems"].size() >= 4);
}

TEST_CASE("plan and run --dry-run change nothing under the root", "[cli][dry-run]") {
  TempDir root;
  root.write("etc/fstab", "UUID=abc / ext4 defaults 0 1\n");
  root.write("etc/os-release", "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\n");
  root.write("proc/meminfo", "MemTotal:        4020000 kB\n");
  const auto cfg = root.write("cfg/c.json", config_json());
  // Twice: on a root that lacks every directory a run would create (state, cache, log,
  // /opt/kasm, /run), where creating one shows as a new entry, and on one whose state
  // directory already holds a file, which must stay as it is.
  const bool with_state_dir = GENERATE(false, true);
  INFO("state directory present: " << with_state_dir);
  if (with_state_dir) root.write("var/lib/kasm-bootstrap/keep", "x");
  if (!with_state_dir) {
    for (const char* dir : {"var", "opt", "run", "tmp"})
      REQUIRE_FALSE(fs::exists(root.path() / dir));
  }
  const auto before = snapshot(root.path());
  for (std::vector<std::string> args : {std::vector<std::string>{"plan"}, {"run", "--dry-run"}}) {
    for (const char* format : {"text", "json"}) {
      auto full = args;
      full.insert(full.end(), {"--root", root.path().string(), "--config", cfg.string(), "-o", format});
      const auto r = run_binary(full);
      INFO(args[0] << " " << format << "\n" << r.err);
      REQUIRE(r.exit_code == 0);
      if (std::string(format) == "json") {
        const auto doc = nlohmann::json::parse(r.out);
        CHECK(doc["dry_run"] == true);
        CHECK(doc["steps"].size() >= 8);
        CHECK(doc["steps"][0]["id"] == "preflight");
      } else {
        CHECK(r.out.find("dry run") != std::string::npos);
      }
    }
  }
  CHECK(snapshot(root.path()) == before);
}

TEST_CASE("run and prebake refuse a --root that does not exist and create nothing", "[cli][root]") {
  TempDir dir;
  const auto cfg = dir.write("c.json", config_json());
  const auto missing = dir.path() / "no-such-root";
  for (const char* command : {"run", "prebake"}) {
    const auto r = run_binary({command, "--root", missing.string(), "--config", cfg.string()});
    INFO(command << ": " << r.out << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(missing.string() + " does not exist or is not a directory") != std::string::npos);
    CHECK_FALSE(fs::exists(missing));
    require_no_secret("stderr", r.err);
  }
}

TEST_CASE("a planted secret appears on no channel: stdout, stderr, log, status, state", "[cli][secrets]") {
  TempDir root;
  const auto pair = planted_pair(root);
  const auto dir = root.path() / "userdata";
  root.write("userdata/server_id", "0b5e7c1a-2d4f-4a6b-9c8d-1e2f3a4b5c6d\n");
  root.write("userdata/manager_address", "127.0.0.1:9\n");
  root.write("userdata/swap_size", "off\n");
  root.write("userdata/download_timeout_seconds", "5\n");
  root.write("userdata/release_url", "https://127.0.0.1:9/k.tgz\n");
  root.write("userdata/release_sha256", std::string(64, 'b') + "\n");
  root.write("userdata/agent_address", "10.1.2.3\n");
  root.write("userdata/console", "\n");
  root.write("userdata/nginx_cert", pair.cert);
  const auto key_file = root.write("secret/key.pem", pair.key);
  const std::map<std::string, std::string> env{{"KASM_BOOTSTRAP_MANAGER_TOKEN", kPlantedToken}};

  std::vector<kb::test::RunResult> results;
  for (const char* format : {"text", "json"}) {
    results.push_back(run_binary({"plan", "-v", "--root", root.path().string(), "--config", dir.string(),
                                  "--nginx-key-file", key_file.string(), "-o", format},
                                 env));
    // A real run: it goes as far as this build's steps go, writing log, status and state.
    results.push_back(run_binary({"run", "-v", "--root", root.path().string(), "--config", dir.string(),
                                  "--nginx-key-file", key_file.string(), "-o", format},
                                 env));
  }
  // The key from stdin, too.
  results.push_back(
      run_binary({"plan", "-v", "--root", root.path().string(), "--config", dir.string(), "--nginx-key-file", "-"}, env,
                 pair.key));
  for (const auto& r : results) {
    INFO(r.out << r.err);
    CHECK(r.exit_code != 1); // no internal error
    require_no_secret("stdout", r.out, &pair);
    require_no_secret("stderr", r.err, &pair);
  }
  // The dry runs printed the masked values.
  CHECK(results[0].out.find("manager_token") != std::string::npos);
  CHECK(results[0].out.find("****") != std::string::npos);

  const auto state_dir = root.path() / "var/lib/kasm-bootstrap";
  REQUIRE(fs::exists(state_dir / "kasm-bootstrap.log"));
  REQUIRE(fs::exists(state_dir / "status.json"));
  for (const auto& e : fs::recursive_directory_iterator(state_dir))
    if (e.is_regular_file()) require_no_secret(e.path().string(), kb::test::read_file(e.path()), &pair);
}

TEST_CASE("a run reports the failing step in its exit code, output and status file", "[cli]") {
  TempDir root;
  const auto cfg = root.write("c.json", config_json());
  const auto r = run_binary({"run", "--root", root.path().string(), "--config", cfg.string(), "-o", "json"});
  const auto doc = nlohmann::json::parse(r.out);
  const auto status = nlohmann::json::parse(kb::test::read_file(root.path() / "var/lib/kasm-bootstrap/status.json"));
  CHECK(r.exit_code == doc["exit_code"].get<int>());
  CHECK(status["exit_code"] == doc["exit_code"]);
  if (r.exit_code != 0) {
    CHECK(doc["failed_step"] == status["failed_step"]);
    CHECK(r.err.find(doc["failed_step"].get<std::string>()) != std::string::npos);
  }
}

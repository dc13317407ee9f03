// Hostile input on every configuration channel, through the real binary: each attack
// gets exit 3 (configuration) or 2 (usage) with a message that names the input and the
// reason, within seconds (no hang on a FIFO, no crash on deep nesting), JSON output that
// still parses, no secret and no content of a file the input pointed at.

#include "test_support.hpp"

#include "kasm_bootstrap/util/json_text.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <string>

using kb::test::run_process;
using kb::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kHostileToken = "HOSTILE-token-5c2e9a17b3d8";
// What a file outside the config directory holds; it must never be echoed.
const std::string kHostileOutsideMarker = "root:$6$OUTSIDE-MARKER-hash:19000:0:99999:7:::";

// A fast bound: a hang shows as a kill after 20 s, not the suite's timeout.
kb::test::RunResult hostile_plan(const TempDir& root, std::vector<std::string> args,
                                 const std::map<std::string, std::string>& env = {},
                                 const std::string& stdin_text = "") {
  std::vector<std::string> argv{kb::test::binary_path(), "plan", "--root", root.path().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, env, stdin_text, std::chrono::seconds(20));
}

nlohmann::json hostile_valid_config() {
  return {{"server_id", "3f6c2a4e-9b1d-4c57-a8e2-6d0f1b7c9e21"},
          {"manager_address", "manager.example.internal"},
          {"manager_token", kHostileToken},
          {"release_url", "https://releases.example.internal/kasm_release.tar.gz"},
          {"release_sha256", std::string(64, 'a')}};
}

void hostile_fifo(const fs::path& path) { REQUIRE(::mkfifo(path.c_str(), 0600) == 0); }

void check_hostile_refused(const kb::test::RunResult& r, int exit_code, const std::string& says) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == exit_code);
  CHECK(r.err.find(says) != std::string::npos);
  CHECK(r.out.find(kHostileToken) == std::string::npos);
  CHECK(r.err.find(kHostileToken) == std::string::npos);
  CHECK(r.err.find("OUTSIDE-MARKER") == std::string::npos);
  CHECK(r.out.find("OUTSIDE-MARKER") == std::string::npos);
  CHECK(r.err.size() < 8192); // nothing echoed unbounded
}

} // namespace

TEST_CASE("hostile input: a FIFO, a device or a directory where a file is expected", "[hostile][config]") {
  TempDir root;
  const auto fifo = root.path() / "config.fifo";
  hostile_fifo(fifo);
  check_hostile_refused(hostile_plan(root, {"--config", fifo.string()}), 3, "is a FIFO, not a regular file");
  check_hostile_refused(hostile_plan(root, {"--config", "/dev/zero"}), 3, "is a character device, not a regular file");
  const auto cfg = root.write("c.json", hostile_valid_config().dump());
  check_hostile_refused(hostile_plan(root, {"--config", cfg.string(), "--manager-token-file", fifo.string()}), 3,
                        "--manager-token-file " + fifo.string() + ": is a FIFO, not a regular file");
  check_hostile_refused(hostile_plan(root, {"--config", cfg.string(), "--manager-token-file", "/dev/zero"}), 3,
                        "is a character device");
  check_hostile_refused(hostile_plan(root, {"--config", cfg.string(), "--nginx-key-file", root.path().string()}), 3,
                        "is a directory, not a regular file");
}

TEST_CASE("hostile input: every channel has a size cap, stdin included", "[hostile][config]") {
  TempDir root;
  const std::string huge(2u << 20, ' ');
  check_hostile_refused(hostile_plan(root, {"--config", "-"}, {}, huge), 3,
                        "is larger than 1048576 bytes (from --config - (stdin))");
  const auto big = root.write("big.json", huge);
  check_hostile_refused(hostile_plan(root, {"--config", big.string()}), 3, "is larger than 1048576 bytes");
  const auto cfg = root.write("c.json", hostile_valid_config().dump());
  const auto token_file = root.write("token", std::string(100 * 1024, 'x'));
  check_hostile_refused(hostile_plan(root, {"--config", cfg.string(), "--manager-token-file", token_file.string()}), 3,
                        "is larger than 65536 bytes");

  SECTION("the configuration directory counts as one input") {
    TempDir dir;
    dir.write("server_id", "3f6c2a4e-9b1d-4c57-a8e2-6d0f1b7c9e21");
    dir.write("provider", std::string(700 * 1024, 'a'));
    dir.write("release_url", std::string(700 * 1024, 'b'));
    check_hostile_refused(hostile_plan(root, {"--config", dir.path().string()}), 3,
                          "for the whole configuration directory");
  }
}

TEST_CASE("hostile input: configuration directory entries that lead elsewhere", "[hostile][config]") {
  TempDir root;
  TempDir outside;
  const auto secret_file = outside.write("shadow", kHostileOutsideMarker);
  TempDir dir;
  const auto config = hostile_valid_config();
  for (const auto& [key, value] : config.items())
    if (key != "manager_token") dir.write(key, value.get<std::string>());

  SECTION("a symlink out of the directory is refused without being read") {
    fs::create_symlink(secret_file, dir.path() / "manager_token");
    check_hostile_refused(hostile_plan(root, {"--config", dir.path().string()}), 3,
                          "manager_token: is a symbolic link to a file outside the directory; refused");
  }
  SECTION("a symlink through .. is refused too") {
    fs::create_symlink("../" + fs::relative(secret_file, dir.path().parent_path()).string(),
                       dir.path() / "manager_token");
    check_hostile_refused(hostile_plan(root, {"--config", dir.path().string()}), 3, "outside the directory");
  }
  SECTION("a symlink to a file inside the directory is followed") {
    dir.write(".token.real", kHostileToken);
    fs::create_symlink(".token.real", dir.path() / "manager_token");
    const auto r = hostile_plan(root, {"--config", dir.path().string()});
    INFO(r.err);
    CHECK(r.err.find("manager_token") == std::string::npos);
    CHECK(r.err.find(kHostileToken) == std::string::npos);
  }
  SECTION("a FIFO or a directory named after a key") {
    hostile_fifo(dir.path() / "manager_token");
    fs::create_directory(dir.path() / "provider");
    const auto r = hostile_plan(root, {"--config", dir.path().string()});
    check_hostile_refused(r, 3, "manager_token: is a FIFO, not a regular file");
    CHECK(r.err.find("provider: is a directory, not a regular file") != std::string::npos);
  }
}

TEST_CASE("hostile input: 60 000 nested arrays are refused before they are parsed", "[hostile][config]") {
  TempDir root;
  const std::string deep = std::string(60000, '[') + std::string(60000, ']');
  const auto cfg = root.write("deep.json", deep);
  check_hostile_refused(hostile_plan(root, {"--config", cfg.string()}), 3, "nested deeper than 64 levels");
  const auto json = hostile_plan(root, {"--config", cfg.string(), "-o", "json"});
  CHECK(json.exit_code == 3);
  CHECK(nlohmann::json::parse(json.out)["result"] == "invalid-config");
  // Inside a key's value, and as a list written as JSON text in a directory file.
  const auto in_value = root.write("in-value.json", R"({"provider": )" + std::string(100, '[') + "]");
  check_hostile_refused(hostile_plan(root, {"--config", in_value.string()}), 3, "nested deeper than 64 levels");
  check_hostile_refused(
      hostile_plan(root, {"--config", cfg.string()},
                   {{"KASM_BOOTSTRAP_ADDRESS_SOURCES", std::string(100, '[') + std::string(100, ']')}}),
      3, "address_sources");
}

TEST_CASE("hostile input: bytes that are not UTF-8 are a configuration error, also with -o json", "[hostile][config]") {
  TempDir root;
  const auto cfg = root.write("c.json", hostile_valid_config().dump());
  const std::map<std::string, std::string> env{{"KASM_BOOTSTRAP_HEALTH_TIMEOUT_SECONDS", "\xff\xfe"},
                                               {"KASM_BOOTSTRAP_PROVIDER", "aws\xc3"}};
  check_hostile_refused(hostile_plan(root, {"--config", cfg.string()}, env), 3, "health_timeout_seconds");
  const auto json = hostile_plan(root, {"--config", cfg.string(), "-o", "json"}, env);
  INFO(json.out << json.err);
  CHECK(json.exit_code == 3);
  const auto doc = nlohmann::json::parse(json.out); // throws on invalid UTF-8
  CHECK(doc["result"] == "invalid-config");
  CHECK(doc["problems"].size() == 2);
  // A file name in a configuration directory is bytes, too.
  TempDir dir;
  dir.write("bad\xff\x1b[31mname", "x");
  const auto r = hostile_plan(root, {"--config", dir.path().string(), "-o", "json"});
  CHECK(r.exit_code == 3);
  CHECK_NOTHROW(nlohmann::json::parse(r.out));
  CHECK(r.out.find('\x1b') == std::string::npos);
}

TEST_CASE("hostile input: control characters, NUL and oversized values are refused by name", "[hostile][config]") {
  TempDir root;
  auto with = [&](const std::string& key, const std::string& value) {
    auto c = hostile_valid_config();
    c[key] = value;
    return root.write("c-" + key + ".json", c.dump()).string();
  };
  // A NUL would silently cut the token short on the installer's command line.
  const auto nul =
      hostile_plan(root, {"--config", with("manager_token", kHostileToken + std::string(1, '\0') + "tail")});
  check_hostile_refused(nul, 3, "manager_token: contains a control character (0x00 at byte 27); refused");
  check_hostile_refused(hostile_plan(root, {"--config", with("manager_token", "HOSTILE-token\n5c2e9a17b3d8")}), 3,
                        "manager_token: contains a control character (0x0A");
  check_hostile_refused(hostile_plan(root, {"--config", with("manager_address", "manager\x1b[2J.example")}), 3,
                        "manager_address: contains a control character (0x1B");
  const auto long_id = hostile_plan(root, {"--config", with("server_id", std::string(200 * 1024, 'a'))});
  check_hostile_refused(long_id, 3, "server_id: is 204800 bytes long; at most 4096 are accepted");
  check_hostile_refused(hostile_plan(root, {"--config", with("server_id", "not-a-uuid")}), 3,
                        "server_id: 'not-a-uuid' is not a Kasm server id (a UUID");
  check_hostile_refused(hostile_plan(root, {"--config", with("manager_address", std::string(300, 'm'))}), 3,
                        "manager_address: '" + std::string(60, 'm') + "... (300 bytes)' is not a host name");
  check_hostile_refused(hostile_plan(root, {"--config", with("manager_token", "kasm")}), 3,
                        "manager_token: is shorter than 8 characters");
  // PEM keys keep their newlines.
  const auto pem = hostile_plan(root, {"--config", with("nginx_cert", "-----BEGIN CERTIFICATE-----\nAAAA\n")});
  CHECK(pem.err.find("control character") == std::string::npos);
}

TEST_CASE("json_too_deep counts brackets outside strings only", "[hostile][json]") {
  using kb::util::json_too_deep;
  CHECK_FALSE(json_too_deep(R"({"a": [[[1]]]})", 4));
  CHECK(json_too_deep(R"({"a": [[[[1]]]]})", 4) == 9u);
  CHECK_FALSE(json_too_deep(R"({"a": "[[[[[[[[[[\"[[[[[["})", 2));
  CHECK_FALSE(json_too_deep(std::string(64, '[') + std::string(64, ']')));
  CHECK(json_too_deep(std::string(65, '[')) == 64u);
}

// Values that arrive as raw bytes (environment, flags, files of a config directory) must
// be UTF-8: JSON output, the state file and the agent's YAML cannot carry anything else.
// Found by tests/fuzz/config_dir_fuzz: a stray byte used to surface as an internal error
// from the JSON library instead of a config error naming the key.

#include "test_support.hpp"

#include "kasm_bootstrap/config/loader.hpp"
#include "kasm_bootstrap/config/serialize.hpp"

using kb::test::TempDir;

TEST_CASE("a value that is not UTF-8 is a config problem naming the key and its origin", "[config]") {
  kb::config::LoadInputs inputs;
  inputs.environment["KASM_BOOTSTRAP_SERVER_HOSTNAME"] = "agent\xff";
  inputs.environment["KASM_BOOTSTRAP_PROVIDER"] = "\xed\xa0\x80";                    // a UTF-16 surrogate, CESU-style
  inputs.environment["KASM_BOOTSTRAP_ADDRESS_SOURCES"] = "route,\xc0\xaf";           // overlong '/'
  inputs.environment["KASM_BOOTSTRAP_EXTERNAL_FQDN"] = "agent-\xc3\xa9.example.com"; // valid: é
  const auto loaded = kb::config::load(inputs);

  std::map<std::string, std::string> problems;
  for (const auto& p : loaded.problems)
    problems[p.key] = p.to_string();
  REQUIRE(problems.size() == 3);
  CHECK(problems["server_hostname"] ==
        "server_hostname: is not valid UTF-8 text (check the file's encoding) (from KASM_BOOTSTRAP_SERVER_HOSTNAME)");
  CHECK(problems.count("provider") == 1);
  CHECK(problems.count("address_sources") == 1);
  CHECK(loaded.config.external_fqdn == "agent-\xc3\xa9.example.com");
  // What is left serialises (this threw before).
  CHECK_NOTHROW(kb::config::fingerprint(loaded.config));
}

TEST_CASE("the plan command reports a non-UTF-8 config file as a config error, not an internal one", "[config]") {
  TempDir root;
  const auto dir = root.path() / "config.d";
  // Complete and valid apart from the one value, so nothing else stops the command first.
  root.write("config.d/server_id", "3f6c2a4e-9b1d-4c57-a8e2-6d0f1b7c9e21\n");
  root.write("config.d/manager_address", "manager.example.internal\n");
  root.write("config.d/manager_token", "tok-encoding-test-0123456789\n");
  root.write("config.d/release_url", "https://releases.example.internal/kasm_release.tar.gz\n");
  root.write("config.d/release_sha256", std::string(64, 'a') + "\n");
  root.write("config.d/server_hostname", std::string("host\xfe\n"));
  const auto r = kb::test::run_binary({"plan", "--root", root.path().string(), "--config", dir.string()});
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("server_hostname: is not valid UTF-8 text") != std::string::npos);
  CHECK(r.err.find("json.exception") == std::string::npos);
}

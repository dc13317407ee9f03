// Configuration layers, precedence and every validation message (README.md "Configuration";
// docs/providers.md "What the rendered values look like").

#include "cert_fixtures.hpp"
#include "kasm_bootstrap/config/loader.hpp"
#include "kasm_bootstrap/config/serialize.hpp"
#include "kasm_bootstrap/config/validate.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"
#include "test_support.hpp"

#include <sstream>

using kb::config::LoadedConfig;
using kb::config::LoadInputs;
using kb::config::Purpose;
using kb::test::TempDir;

namespace {

const char* kValidConfig = R"({
  "server_id": "3f6c2a4e-9b1d-4c57-a8e2-6d0f1b7c9e21",
  "manager_address": "manager.example.internal",
  "manager_token": "tok-config-file-1234567890",
  "provider": "aws",
  "release_url": "https://releases.example.internal/kasm_release.tar.gz",
  "release_sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
})";

LoadInputs inputs_with_root(const kb::sys::RootFs& fs) {
  LoadInputs in;
  in.root = &fs;
  return in;
}

LoadedConfig load_and_validate(LoadInputs inputs, Purpose purpose = Purpose::kRun) {
  auto loaded = kb::config::load(inputs);
  if (loaded.ok()) kb::config::validate(loaded, purpose);
  return loaded;
}

// The one problem about `key`, or fail.
std::string problem_for(const LoadedConfig& loaded, const std::string& key) {
  for (const auto& p : loaded.problems)
    if (p.key == key) return p.to_string();
  std::string all;
  for (const auto& p : loaded.problems)
    all += p.to_string() + "\n";
  FAIL("no problem reported for key " << key << "; problems were:\n" << all);
  return {};
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("layers merge key by key: flags > environment > --config > image defaults > built-in", "[config]") {
  TempDir root;
  root.write("etc/kasm-bootstrap/config.json",
             R"({"release_url": "https://image.example/r.tgz", "swap_size": "2G", "cache_dir": "/var/cache/img",
                 "provider": "image-provider", "imds_endpoint": "http://127.0.0.9"})");
  const auto config_file = root.write("userdata.json", R"({"provider": "file-provider", "swap_size": "4G",
      "server_id": "0b5e7c1a-2d4f-4a6b-9c8d-1e2f3a4b5c6d", "manager_address": "m.example", "manager_token": "tok-file-abcdefgh",
      "release_sha256": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"})");
  kb::sys::RootFs fs(root.path());
  LoadInputs in;
  in.root = &fs;
  in.config_path = config_file.string();
  in.environment = {
      {"KASM_BOOTSTRAP_SWAP_SIZE", "8G"}, {"KASM_BOOTSTRAP_PROVIDER", "env-provider"}, {"UNRELATED", "ignored"}};
  in.flags = {{"provider", "flag-provider"}};
  in.flag_origins = {{"provider", "--provider"}};

  const auto loaded = load_and_validate(in);
  REQUIRE(loaded.problems.empty());
  const auto& c = loaded.config;
  CHECK(c.provider == "flag-provider");                         // flag beats all
  CHECK(c.swap_size == "8G");                                   // env beats file and image
  CHECK(c.server_id == "0b5e7c1a-2d4f-4a6b-9c8d-1e2f3a4b5c6d"); // file only
  CHECK(c.release_url == "https://image.example/r.tgz");        // image defaults only
  CHECK(c.cache_dir == "/var/cache/img");
  CHECK(c.swap_file == "/var/swap.1"); // built-in default
  CHECK(loaded.origins.at("provider") == "--provider");
  CHECK(loaded.origins.at("swap_size") == "KASM_BOOTSTRAP_SWAP_SIZE");
  CHECK(loaded.origins.at("release_url") == "/etc/kasm-bootstrap/config.json");
  CHECK(loaded.origins.at("swap_file") == "default");
}

TEST_CASE("config from stdin (-) reads JSON and a directory gives one file per key", "[config]") {
  TempDir root;
  kb::sys::RootFs fs(root.path());
  SECTION("stdin") {
    std::istringstream stdin_text(kValidConfig);
    LoadInputs in;
    in.root = &fs;
    in.config_path = "-";
    in.stdin_stream = &stdin_text;
    const auto loaded = load_and_validate(in);
    REQUIRE(loaded.problems.empty());
    CHECK(loaded.config.manager_token.reveal() == "tok-config-file-1234567890");
  }
  SECTION("directory: heredoc newline stripped, values kept byte for byte") {
    root.write("d/server_id", "0b5e7c1a-2d4f-4a6b-9c8d-1e2f3a4b5c6d\n");
    root.write("d/manager_address", "10.0.0.5\n");
    root.write("d/manager_token", "a'b\"c$HOME`x`\\y\n");
    root.write("d/release_url", "https://r.example/x.tgz\n");
    root.write("d/release_sha256", std::string(64, 'c') + "\n");
    root.write("d/address_sources", "aws-imds\nroute\n");
    root.write("d/.hidden", "ignored");
    LoadInputs in;
    in.root = &fs;
    in.config_path = (root.path() / "d").string();
    const auto loaded = load_and_validate(in);
    REQUIRE(loaded.problems.empty());
    CHECK(loaded.config.manager_token.reveal() == "a'b\"c$HOME`x`\\y");
    CHECK(loaded.config.address_sources == std::vector<std::string>{"aws-imds", "route"});
  }
}

TEST_CASE("every required key missing is reported at once, naming the key and how to set it", "[config]") {
  TempDir root;
  kb::sys::RootFs fs(root.path());
  const auto loaded = load_and_validate(inputs_with_root(fs));
  for (const char* key : {"server_id", "manager_address", "manager_token", "release_url", "release_sha256"})
    CHECK(contains(problem_for(loaded, key), "required"));
  // The secret's hint must not suggest a flag.
  CHECK(contains(problem_for(loaded, "manager_token"), "KASM_BOOTSTRAP_MANAGER_TOKEN"));
  CHECK_FALSE(contains(problem_for(loaded, "manager_token"), "--manager-token"));
  CHECK(contains(problem_for(loaded, "server_id"), "--server-id"));
}

TEST_CASE("swap and detect-address need no registration keys", "[config]") {
  TempDir root;
  kb::sys::RootFs fs(root.path());
  CHECK(load_and_validate(inputs_with_root(fs), Purpose::kSwap).problems.empty());
  CHECK(load_and_validate(inputs_with_root(fs), Purpose::kDetectAddress).problems.empty());
  CHECK_FALSE(load_and_validate(inputs_with_root(fs), Purpose::kHealth).problems.empty());
}

TEST_CASE("input rules: unrendered templates, None, $request_host$, PEM escapes", "[config]") {
  TempDir root;
  kb::sys::RootFs fs(root.path());
  auto with = [&](std::map<std::string, std::string> env) {
    LoadInputs in;
    in.root = &fs;
    in.config_path = root.write("c.json", kValidConfig).string();
    for (auto& [k, v] : env)
      in.environment["KASM_BOOTSTRAP_" + k] = v;
    return load_and_validate(in);
  };

  SECTION("a value that is still a Kasm template variable") {
    const auto loaded = with({{"SERVER_ID", "{server_id}"}});
    const auto msg = problem_for(loaded, "server_id");
    CHECK(contains(msg, "{server_id}"));
    CHECK(contains(msg, "not rendered by Kasm"));
    CHECK(contains(msg, "KASM_BOOTSTRAP_SERVER_ID"));
  }
  SECTION("braces that name no Kasm variable are a legal value") {
    // Kasm renders only its own names; an operator's token may hold anything else.
    const auto loaded = with({{"MANAGER_TOKEN", "t{x}o{{y}}k{server}en"}, {"PROVIDER", "{provider}"}});
    CHECK(loaded.problems.empty());
    CHECK(loaded.config.provider == "{provider}");
  }
  SECTION("every variable a Kasm startup script renders is recognised when left unrendered") {
    for (const char* name : {"server_hostname", "server_external_fqdn", "provider_name", "ssh_key"}) {
      const auto loaded = with({{"SERVER_HOSTNAME", std::string("agent-{") + name + "}"}});
      CHECK(contains(problem_for(loaded, "server_hostname"), "not rendered by Kasm"));
    }
  }
  SECTION("a secret that is still a template is reported without being stored") {
    const auto loaded = with({{"MANAGER_TOKEN", "{manager_token}"}});
    CHECK(contains(problem_for(loaded, "manager_token"), "not rendered by Kasm"));
  }
  SECTION("None or blank FQDN means no FQDN") {
    CHECK(with({{"EXTERNAL_FQDN", "None"}}).config.external_fqdn.empty());
    CHECK(with({{"EXTERNAL_FQDN", "   "}}).config.external_fqdn.empty());
    CHECK(with({{"EXTERNAL_FQDN", "agent.example.com"}}).config.external_fqdn == "agent.example.com");
  }
  SECTION("$request_host$ tells the operator to fix the Zone") {
    const auto msg = problem_for(with({{"MANAGER_ADDRESS", "$request_host$"}}), "manager_address");
    CHECK(contains(msg, "Upstream Auth Address"));
    CHECK(contains(msg, "Zone"));
  }
  SECTION("a URL instead of a host name") {
    CHECK(contains(problem_for(with({{"MANAGER_ADDRESS", "https://m.example"}}), "manager_address"), "not a URL"));
  }
  SECTION("PEM with literal \\n becomes real lines; blank cert keeps the self-signed pair") {
    kb::test::CertFactory certs(root);
    const auto pair = certs.self_signed("agent", "agent.example.com", "DNS:agent.example.com");
    auto escape = [](std::string pem) {
      std::string out;
      for (char ch : pem)
        out += ch == '\n' ? std::string("\\n") : std::string(1, ch);
      return out;
    };
    const auto loaded = with({{"NGINX_CERT", escape(pair.cert)}, {"NGINX_KEY", escape(pair.key)}});
    REQUIRE(loaded.problems.empty());
    CHECK(loaded.config.nginx_cert == pair.cert);
    CHECK(loaded.config.nginx_key.reveal() == pair.key);
    const auto blank = with({{"NGINX_CERT", " "}, {"NGINX_KEY", ""}});
    REQUIRE(blank.problems.empty());
    CHECK(blank.config.nginx_cert.empty());
  }
  SECTION("a cert without its key is an error") {
    const auto loaded = with({{"NGINX_CERT", "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----"}});
    CHECK(contains(problem_for(loaded, "nginx_key"), "pair"));
  }
}

TEST_CASE("bad values name the key, the value and the reason", "[config]") {
  TempDir root;
  kb::sys::RootFs fs(root.path());
  auto problem = [&](const std::string& env_key, const std::string& value, const std::string& key) {
    LoadInputs in;
    in.root = &fs;
    in.config_path = root.write("c.json", kValidConfig).string();
    in.environment["KASM_BOOTSTRAP_" + env_key] = value;
    return problem_for(load_and_validate(in), key);
  };
  CHECK(contains(problem("SWAP_SIZE", "lots", "swap_size"), "'lots'"));
  CHECK(contains(problem("SWAP_FILE", "relative/swap", "swap_file"), "absolute"));
  CHECK(contains(problem("RELEASE_URL", "http://r.example/x.tgz", "release_url"), "allow_insecure_http"));
  CHECK(contains(problem("RELEASE_URL", "ftp://r.example/x.tgz", "release_url"), "ftp"));
  CHECK(contains(problem("RELEASE_SHA256", "abc", "release_sha256"), "64 hexadecimal"));
  CHECK(contains(problem("AGENT_ADDRESS", "10.0.0.300", "agent_address"), "not an IPv4 or IPv6"));
  CHECK(contains(problem("AGENT_ADDRESS", "0.0.0.0", "agent_address"), "unspecified"));
  CHECK(contains(problem("ADDRESS_SOURCES", "aws-imds,carrier-pigeon", "address_sources"), "carrier-pigeon"));
  CHECK(contains(problem("SWAP_REQUIRED", "maybe", "swap_required"), "true or false"));
  CHECK(contains(problem("INSTALL_TIMEOUT_SECONDS", "soon", "install_timeout_seconds"), "whole number"));
  CHECK(contains(problem("INSTALL_TIMEOUT_SECONDS", "0", "install_timeout_seconds"), "between 1 and"));
  CHECK(contains(problem("IMDS_ENDPOINT", "not a url", "imds_endpoint"), "http(s) URL"));
}

TEST_CASE("unknown keys are errors with a did-you-mean, from every layer", "[config]") {
  TempDir root;
  kb::sys::RootFs fs(root.path());
  LoadInputs in;
  in.root = &fs;
  in.config_path = root.write("c.json", R"({"server_idd": "x", "swapsize": "1G"})").string();
  in.environment = {{"KASM_BOOTSTRAP_MANAGER_ADDRES", "m"}};
  in.flags = {{"relase_url", "https://x"}};
  const auto loaded = kb::config::load(in);
  CHECK(contains(problem_for(loaded, "server_idd"), "did you mean 'server_id'"));
  CHECK(contains(problem_for(loaded, "swapsize"), "did you mean 'swap_size'"));
  CHECK(contains(problem_for(loaded, "manager_addres"), "did you mean 'manager_address'"));
  CHECK(contains(problem_for(loaded, "relase_url"), "did you mean 'release_url'"));
}

TEST_CASE("malformed JSON is reported with line and column", "[config]") {
  TempDir root;
  kb::sys::RootFs fs(root.path());
  LoadInputs in;
  in.root = &fs;
  in.config_path = root.write("bad.json", "{\n  \"server_id\": \"x\",\n  \"provider\" \"aws\"\n}\n").string();
  const auto loaded = kb::config::load(in);
  REQUIRE(loaded.problems.size() == 1);
  const auto msg = loaded.problems[0].to_string();
  CHECK(contains(msg, "malformed JSON"));
  CHECK(contains(msg, "line 3"));
  CHECK(contains(msg, "bad.json"));

  // nlohmann's message quotes what it read last: for an unterminated string that is the
  // whole value, so a token must not reach the message.
  in.config_path = root.write("leak.json", "{\"manager_token\": \"tok-3f9a-unterminated-secret\n").string();
  const auto leak = kb::config::load(in);
  REQUIRE(leak.problems.size() == 1);
  CHECK(contains(leak.problems[0].to_string(), "malformed JSON at line"));
  CHECK_FALSE(contains(leak.problems[0].to_string(), "tok-3f9a"));
  CHECK_FALSE(contains(leak.problems[0].to_string(), "last read"));

  in.config_path = root.write("array.json", "[1,2]").string();
  CHECK(contains(kb::config::load(in).problems.at(0).to_string(), "expected a JSON object"));
  // A number too large for a double: nlohmann throws out_of_range, not parse_error (the
  // config fuzzer's find, tests/fuzz/corpus/config/number-overflow.json).
  for (const char* text : {"66666666666666666566666666665e6666", "{\"swap_size\": 1e999}"}) {
    in.config_path = root.write("huge.json", text).string();
    const auto huge = kb::config::load(in);
    INFO(text);
    REQUIRE(huge.problems.size() == 1);
    CHECK(contains(huge.problems[0].to_string(), "malformed JSON: a number is too large to represent"));
    CHECK(contains(huge.problems[0].to_string(), "huge.json"));
  }
  in.config_path = (root.path() / "missing.json").string();
  CHECK(contains(kb::config::load(in).problems.at(0).to_string(), "does not exist"));
}

TEST_CASE("the serialised configuration masks secrets and the fingerprint follows values", "[config]") {
  TempDir root;
  kb::sys::RootFs fs(root.path());
  LoadInputs in;
  in.root = &fs;
  in.config_path = root.write("c.json", kValidConfig).string();
  auto loaded = load_and_validate(in);
  REQUIRE(loaded.problems.empty());
  const auto j = kb::config::to_json(loaded.config);
  CHECK(j["manager_token"] == "****");
  CHECK_FALSE(contains(j.dump(), "tok-config-file"));
  const auto before = kb::config::fingerprint(loaded.config);
  loaded.config.server_id = "other";
  CHECK(kb::config::fingerprint(loaded.config) != before);
}

TEST_CASE("size parser", "[config]") {
  using kb::config::parse_size;
  CHECK(parse_size("8G") == 8ull << 30);
  CHECK(parse_size("512M") == 512ull << 20);
  CHECK(parse_size("2GiB") == 2ull << 30);
  CHECK(parse_size("4096") == 4096u);
  CHECK(parse_size("0") == 0u);
  CHECK_FALSE(parse_size("").has_value());
  CHECK_FALSE(parse_size("G").has_value());
  CHECK_FALSE(parse_size("-1G").has_value());
  CHECK_FALSE(parse_size("1.5G").has_value());
  CHECK_FALSE(parse_size("99999999999999999999G").has_value());
}

TEST_CASE("the effective configuration round-trips without its secrets, and only where asked for", "[config]") {
  TempDir dir;
  dir.write("run.json", kValidConfig);
  const kb::sys::RootFs fs(dir.path() / "root");
  LoadInputs in = inputs_with_root(fs);
  in.config_path = (dir.path() / "run.json").string();
  in.flags = {{"swap_size", "2G"}, {"address_sources", "aws-imds,route"}, {"block_container_metadata", "false"}};
  kb::test::CertFactory certs(dir);
  const auto pair = certs.self_signed("agent", "manager.example.internal", "DNS:manager.example.internal");
  in.environment = {{"KASM_BOOTSTRAP_NGINX_CERT", pair.cert}, {"KASM_BOOTSTRAP_NGINX_KEY", pair.key}};
  const auto ran = load_and_validate(in);
  for (const auto& p : ran.problems)
    UNSCOPED_INFO(p.to_string());
  REQUIRE(ran.ok());
  const auto saved = kb::config::to_effective_json(ran.config);
  CHECK_FALSE(saved.contains("manager_token"));
  CHECK(saved.dump().find("tok-config-file") == std::string::npos);
  dir.write(std::string("root") + kb::config::kEffectiveConfigPath, saved.dump());

  LoadInputs after = inputs_with_root(fs);
  after.read_effective = true;
  const auto health = load_and_validate(after, Purpose::kHealth);
  REQUIRE(health.ok());
  auto expected = kb::config::to_json(ran.config);
  // Left out: the secrets, and the certificate that pairs with the secret key.
  for (const char* key : {"manager_token", "nginx_key", "nginx_cert"})
    expected[key] = kb::config::to_json(kb::config::Config{})[key];
  CHECK(kb::config::to_json(health.config) == expected);
  CHECK(health.origins.at("manager_address") == kb::config::kEffectiveConfigPath);

  LoadInputs run_again = inputs_with_root(fs); // `run` never reads it
  const auto fresh = kb::config::load(run_again);
  CHECK(fresh.config.manager_address.empty());
}

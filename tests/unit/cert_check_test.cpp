// The nginx certificate checks (kasm/certificates.hpp) against pairs made by the openssl
// CLI, and the same checks at configuration time through the real binary (`plan`).

#include "cert_fixtures.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/certificates.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

using namespace kb;
using namespace kb::test;

namespace {

bool mentions(const std::vector<kasm::CertificateProblem>& problems, const std::string& key, const std::string& text) {
  return std::any_of(problems.begin(), problems.end(), [&](const kasm::CertificateProblem& p) {
    return p.key == key && p.message.find(text) != std::string::npos;
  });
}

std::string all(const std::vector<kasm::CertificateProblem>& problems) {
  std::string s;
  for (const auto& p : problems)
    s += p.key + ": " + p.message + "\n";
  return s;
}

} // namespace

TEST_CASE("cert: a matching pair whose names cover the agent passes with no warning", "[cert]") {
  TempDir dir;
  CertFactory pki(dir);
  const auto pair = pki.self_signed("good", "agent.example.com", "DNS:agent.example.com,IP:10.0.0.7");
  const auto check = kasm::check_certificate_pair(pair.cert, pair.key, {"agent.example.com", "10.0.0.7"});
  INFO(all(check.errors) + all(check.warnings));
  CHECK(check.ok());
  CHECK(check.warnings.empty());
  REQUIRE(check.leaf);
  CHECK(check.leaf->dns_names == std::vector<std::string>{"agent.example.com"});
  CHECK(check.leaf->ip_addresses == std::vector<std::string>{"10.0.0.7"});
  CHECK(check.leaf->subject == "CN=agent.example.com");
  CHECK(check.leaf->self_signed);
  CHECK(check.leaf->sha256.size() == 64);
  CHECK(check.leaf->chain_length == 1);
}

TEST_CASE("cert: a key from another pair is rejected", "[cert]") {
  TempDir dir;
  CertFactory pki(dir);
  const auto pair = pki.self_signed("a", "agent.example.com", "DNS:agent.example.com");
  const auto other_key = pki.key("other");
  const auto check = kasm::check_certificate_pair(pair.cert, other_key, {});
  CHECK_FALSE(check.ok());
  CHECK(mentions(check.errors, "nginx_key", "does not belong to the certificate"));
}

TEST_CASE("cert: an expired certificate is an error naming its end date", "[cert]") {
  TempDir dir;
  CertFactory pki(dir);
  const auto pair = pki.expired("old.example.com");
  const auto check = kasm::check_certificate_pair(pair.cert, pair.key, {"old.example.com"});
  INFO(all(check.errors));
  CHECK_FALSE(check.ok());
  CHECK(mentions(check.errors, "nginx_cert", "expired on 2020-02-01T00:00:00Z"));
}

TEST_CASE("cert: names that do not cover the agent are a warning, not an error", "[cert]") {
  TempDir dir;
  CertFactory pki(dir);
  const auto pair = pki.self_signed("wrong", "other.example.com", "DNS:other.example.com,DNS:*.other.example.com");
  const auto check = kasm::check_certificate_pair(pair.cert, pair.key, {"agent.example.com", "10.0.0.7"});
  CHECK(check.ok());
  CHECK(mentions(check.warnings, "nginx_cert", "does not cover 'agent.example.com'"));
  CHECK(mentions(check.warnings, "nginx_cert", "does not cover '10.0.0.7'"));
  CHECK(mentions(check.warnings, "nginx_cert", "other.example.com, *.other.example.com"));
  // A wildcard covers one label.
  const auto wild = kasm::check_certificate_pair(pair.cert, pair.key, {"a.other.example.com"});
  CHECK(wild.warnings.empty());
}

TEST_CASE("cert: garbage, swapped fields and encrypted keys are clear errors", "[cert]") {
  TempDir dir;
  CertFactory pki(dir);
  const auto pair = pki.self_signed("g", "agent.example.com", "DNS:agent.example.com");

  const auto garbage = kasm::check_certificate_pair(
      "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n", "complete nonsense", {});
  CHECK(mentions(garbage.errors, "nginx_cert", "cannot parse a PEM certificate"));
  CHECK(mentions(garbage.errors, "nginx_key", "cannot parse the PEM private key"));
  CHECK_FALSE(garbage.leaf);

  const auto swapped = kasm::check_certificate_pair(pair.key, pair.cert, {});
  CHECK(mentions(swapped.errors, "nginx_cert", "holds a private key"));

  const auto encrypted = kasm::check_certificate_pair(pair.cert, pki.encrypted(pair.key), {});
  CHECK(mentions(encrypted.errors, "nginx_key", "encrypted"));
  // The key's text never appears in a message.
  for (const auto& e : encrypted.errors)
    CHECK(e.message.find("PRIVATE KEY") == std::string::npos);
}

// The static binary links a lean OpenSSL (docs/static-build.md): the key kinds nginx
// serves and operators use must still parse, match their certificate and be named.
TEST_CASE("cert: RSA, EC P-256/P-384 and Ed25519 pairs all pass", "[cert]") {
  TempDir dir;
  CertFactory pki(dir);
  const std::vector<std::pair<std::string, std::vector<std::string>>> kinds = {
      {"rsa", {"-newkey", "rsa:3072"}},
      {"p256", {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"}},
      {"p384", {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1"}},
      {"ed25519", {"-newkey", "ed25519"}},
  };
  for (const auto& [name, newkey] : kinds) {
    INFO(name);
    const auto pair = pki.self_signed_with(name, "agent.example.com", newkey);
    const auto check = kasm::check_certificate_pair(pair.cert, pair.key, {"agent.example.com"});
    INFO(all(check.errors));
    CHECK(check.errors.empty());
    REQUIRE(check.leaf);
    // A key from another pair of the same kind is still told apart.
    const auto other = pki.self_signed_with(name + "-other", "agent.example.com", newkey);
    const auto crossed = kasm::check_certificate_pair(pair.cert, other.key, {"agent.example.com"});
    CHECK(mentions(crossed.errors, "nginx_key", "does not belong to the certificate"));
  }
}

TEST_CASE("cert: chain order is checked", "[cert]") {
  TempDir dir;
  CertFactory pki(dir);
  const auto c = pki.chain("agent.example.com");

  const auto good = kasm::check_certificate_pair(c.leaf + c.intermediate, c.leaf_key, {"agent.example.com"});
  INFO(all(good.errors));
  CHECK(good.ok());
  CHECK(good.leaf->chain_length == 2);
  CHECK_FALSE(good.leaf->self_signed);

  const auto with_root = kasm::check_certificate_pair(c.leaf + c.intermediate + c.ca, c.leaf_key, {});
  CHECK(with_root.ok());

  const auto leaf_last = kasm::check_certificate_pair(c.intermediate + c.leaf, c.leaf_key, {});
  CHECK(mentions(leaf_last.errors, "nginx_cert", "belongs to certificate #2"));

  const auto gap = kasm::check_certificate_pair(c.leaf + c.ca, c.leaf_key, {});
  CHECK(mentions(gap.errors, "nginx_cert", "chain out of order: certificate #2"));
}

TEST_CASE("cert: a generated self-signed pair passes the checks and names this instance", "[cert]") {
  const auto pair = kasm::generate_self_signed({"agent.example.com", "10.1.2.3", "fd00::7"});
  const auto check =
      kasm::check_certificate_pair(pair.cert_pem, pair.key_pem.reveal(), {"agent.example.com", "10.1.2.3", "fd00::7"});
  INFO(all(check.errors) + all(check.warnings));
  CHECK(check.ok());
  CHECK(check.warnings.empty());
  CHECK(check.leaf->organization == kasm::kGeneratedOrganization);
  CHECK(check.leaf->ip_addresses == std::vector<std::string>{"10.1.2.3", "fd00::7"});
  // Two generations never share a key.
  const auto again = kasm::generate_self_signed({"agent.example.com"});
  CHECK(again.key_pem.reveal() != pair.key_pem.reveal());
  // The openssl CLI agrees the pair is well formed.
  TempDir dir;
  const auto crt = dir.write("g.crt", pair.cert_pem);
  const auto r = run_process({"openssl", "x509", "-in", crt.string(), "-noout", "-text"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("TLS Web Server Authentication") != std::string::npos);
  CHECK_THROWS_AS(kasm::generate_self_signed({}), kb::Error);
}

// Config-time checks: `plan` (a dry run) must refuse a bad pair before anything changes.
namespace {

RunResult plan_with(const TempDir& dir, const std::string& cert, const std::string& key,
                    const std::string& extra = "") {
  nlohmann::json cfg{{"server_id", "1f3a5c7e-0000-4000-8000-000000000001"},
                     {"manager_address", "manager.example.com"},
                     {"release_url", "https://example.invalid/kasm_release.tar.gz"},
                     {"release_sha256", std::string(64, 'a')},
                     {"agent_address", "10.0.0.7"},
                     {"nginx_cert", cert}};
  if (!extra.empty()) cfg.merge_patch(nlohmann::json::parse(extra));
  const auto config = dir.write("config.json", cfg.dump());
  const auto root = dir.path() / "root";
  std::filesystem::create_directories(root);
  return run_binary({"plan", "--config", config.string(), "--root", root.string()},
                    {{"KASM_BOOTSTRAP_MANAGER_TOKEN", "tok-0123456789abcdef"}, {"KASM_BOOTSTRAP_NGINX_KEY", key}});
}

} // namespace

TEST_CASE("cert: plan accepts a good pair given with literal \\n and rejects bad pairs", "[cert][cli]") {
  TempDir dir;
  CertFactory pki(dir);
  const auto good = pki.self_signed("good", "agent.example.com", "DNS:agent.example.com,IP:10.0.0.7");

  const auto ok = plan_with(dir, with_literal_newlines(good.cert), with_literal_newlines(good.key),
                            R"({"external_fqdn": "agent.example.com"})");
  INFO(ok.out + ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("install the configured nginx certificate (CN=agent.example.com") != std::string::npos);
  CHECK(ok.err.find("BEGIN PRIVATE KEY") == std::string::npos);

  const auto mismatched = plan_with(dir, good.cert, pki.key("other"));
  INFO(mismatched.err);
  CHECK(mismatched.exit_code == 3);
  CHECK(mismatched.err.find("nginx_key") != std::string::npos);
  CHECK(mismatched.err.find("does not belong to the certificate") != std::string::npos);
  CHECK(mismatched.err.find("nothing was changed") != std::string::npos);

  const auto expired = pki.expired("agent.example.com");
  const auto old = plan_with(dir, with_literal_newlines(expired.cert), expired.key);
  CHECK(old.exit_code == 3);
  CHECK(old.err.find("expired on 2020-02-01") != std::string::npos);

  const auto wrong_names = pki.self_signed("wrong", "other.example.com", "DNS:other.example.com");
  const auto warned = plan_with(dir, wrong_names.cert, wrong_names.key);
  CHECK(warned.exit_code == 0);
  CHECK(warned.err.find("does not cover '10.0.0.7'") != std::string::npos);

  const auto both = plan_with(dir, good.cert, good.key, R"({"generate_self_signed": true})");
  CHECK(both.exit_code == 3);
  CHECK(both.err.find("generate_self_signed") != std::string::npos);
}

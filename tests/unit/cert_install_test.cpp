// install-certificates refusing before it writes anything (no Docker Engine needed),
// and the /etc/passwd + /etc/group owner lookup under a root. The successful path, with
// nginx reloaded in a real kasm_proxy, is in docker_certificates_test.cpp.

#include "cert_root_fixture.hpp"

#include "kasm_bootstrap/system/accounts.hpp"

using namespace kb;
using namespace kb::test;

TEST_CASE("cert: the kasm owner comes from passwd and group under the root", "[cert]") {
  CertRoot r;
  const sys::RootFs fs(r.root);
  const auto user = sys::find_user(fs, "kasm");
  REQUIRE(user);
  CHECK(user->uid == kKasmUid);
  CHECK(user->primary_gid == 1234);
  CHECK(sys::find_group(fs, "kasm") == kKasmGid);
  const auto owner = sys::resolve_owner(fs, "kasm", ExitCode::kCertificate);
  CHECK(owner.uid == kKasmUid);
  CHECK(owner.gid == kKasmGid);
  CHECK_FALSE(sys::find_user(fs, "kas"));
  CHECK_FALSE(sys::find_user(fs, "# a comment line"));
  std::string message;
  CHECK(error_code([&] { sys::resolve_owner(fs, "nobody-here", ExitCode::kCertificate); }, message) ==
        ExitCode::kCertificate);
  CHECK(message.find("'nobody-here' is not in " + (r.root / "etc/passwd").string()) != std::string::npos);
}

TEST_CASE("cert: install-certificates refuses bad input and leaves the installer's pair alone", "[cert]") {
  CertRoot r;
  auto step = steps::make_install_certificates();
  const auto good = r.pki.self_signed("good", "agent.example.com", "DNS:agent.example.com");
  config::Config c;
  c.docker_socket = "/var/run/docker.sock";
  std::string message;

  SECTION("an expired pair") {
    const auto old = r.pki.expired("agent.example.com");
    c.nginx_cert = old.cert;
    c.nginx_key = Secret(old.key);
    StepRun run(c, r.root);
    CHECK(error_code([&] { run.apply(*step); }, message) == ExitCode::kCertificate);
    CHECK(message.find("expired on 2020-02-01") != std::string::npos);
  }
  SECTION("a key of another pair") {
    c.nginx_cert = good.cert;
    c.nginx_key = Secret(r.pki.key("other"));
    StepRun run(c, r.root);
    CHECK(error_code([&] { run.apply(*step); }, message) == ExitCode::kCertificate);
    CHECK(message.find("does not belong") != std::string::npos);
  }
  SECTION("no kasm user") {
    r.dir.write("root/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    c.nginx_cert = good.cert;
    c.nginx_key = Secret(good.key);
    StepRun run(c, r.root);
    CHECK(error_code([&] { run.apply(*step); }, message) == ExitCode::kCertificate);
    CHECK(message.find("user 'kasm'") != std::string::npos);
  }
  SECTION("no Docker socket") {
    c.nginx_cert = good.cert;
    c.nginx_key = Secret(good.key);
    StepRun run(c, r.root);
    CHECK(error_code([&] { run.apply(*step); }, message) == ExitCode::kDocker);
    CHECK(message.find((r.root / "var/run/docker.sock").string() + " does not exist") != std::string::npos);
  }
  SECTION("no certs directory") {
    std::filesystem::remove_all(r.certs);
    c.nginx_cert = good.cert;
    c.nginx_key = Secret(good.key);
    StepRun run(c, r.root);
    CHECK(error_code([&] { run.apply(*step); }, message) == ExitCode::kCertificate);
    CHECK(message.find("does not exist") != std::string::npos);
    return;
  }
  CHECK(r.cert_on_disk() == r.installer_pair.cert);
  CHECK(r.key_on_disk() == r.installer_pair.key);
  CHECK(message.find("BEGIN") == std::string::npos); // no PEM in messages
  // No temporary file left beside the targets.
  for (const auto& e : std::filesystem::directory_iterator(r.certs))
    CHECK(e.path().filename().string().rfind(".", 0) != 0);
}

TEST_CASE("cert: with a blank nginx_cert the installer's pair is kept", "[cert]") {
  CertRoot r;
  auto step = steps::make_install_certificates();
  StepRun run(config::Config{}, r.root);
  const auto done = run.check(*step);
  REQUIRE(done);
  CHECK(done->at("certificate_source") == "installer");
  CHECK(run.describe(*step).summary.find("keep the certificate") != std::string::npos);
  CHECK(r.cert_on_disk() == r.installer_pair.cert);
}

TEST_CASE("cert: a pair named by nginx_cert_path/nginx_key_path is read inside the root", "[cert]") {
  CertRoot r;
  auto step = steps::make_install_certificates();
  config::Config c;
  c.nginx_cert_path = "/etc/kasm-bootstrap/nginx.crt";
  c.nginx_key_path = "/etc/kasm-bootstrap/nginx.key";
  StepRun run(c, r.root);
  CHECK(run.describe(*step).summary.find("from /etc/kasm-bootstrap/nginx.crt and /etc/kasm-bootstrap/nginx.key") !=
        std::string::npos);
  CHECK_FALSE(run.check(*step)); // the files are not there yet, and not installed

  SECTION("a missing file is refused by name, before anything is written") {
    std::string message;
    CHECK(error_code([&] { run.apply(*step); }, message) == ExitCode::kCertificate);
    CHECK(message.find("nginx_cert_path /etc/kasm-bootstrap/nginx.crt does not exist") != std::string::npos);
    CHECK(r.cert_on_disk() == r.installer_pair.cert);
  }
  SECTION("the pair on disk already: satisfied, and the key is never shown") {
    const auto named = r.pki.self_signed("named", "agent.example.com", "DNS:agent.example.com");
    r.dir.write("root/etc/kasm-bootstrap/nginx.crt", named.cert);
    r.dir.write("root/etc/kasm-bootstrap/nginx.key", named.key);
    r.dir.write("root/opt/kasm/1.15.0/certs/kasm_nginx.crt", named.cert);
    r.dir.write("root/opt/kasm/1.15.0/certs/kasm_nginx.key", named.key);
    ::chmod((r.certs / "kasm_nginx.crt").c_str(), 0644);
    const auto done = run.check(*step);
    REQUIRE(done);
    CHECK(done->at("certificate_source") == "files");
    // A baked image's own-certificate rule keeps a named pair instead of generating one.
    auto own = steps::with_own_certificate(steps::make_install_certificates());
    CHECK(run.check(*own));
  }
}

// install-certificates end to end against a REAL Docker Engine: files written with the
// right modes and owner, and nginx in a real kasm_proxy serving them afterwards — by
// reload when the certs directory is mounted, by restart when the two files are
// bind-mounted one by one (Kasm's layout, where a renamed file stays invisible).

#include "cert_root_fixture.hpp"
#include "docker_world.hpp"

#include "kasm_bootstrap/kasm/certificates.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <sys/stat.h>

using namespace kb;
using namespace kb::test;

namespace {

void check_files(const CertRoot& r, const std::string& cert, const std::string& key) {
  CHECK(r.cert_on_disk() == cert);
  CHECK(r.key_on_disk() == key);
  const auto c = stat_of(r.certs / "kasm_nginx.crt");
  const auto k = stat_of(r.certs / "kasm_nginx.key");
  CHECK((c.st_mode & 07777) == 0644);
  CHECK((k.st_mode & 07777) == 0600);
  CHECK(c.st_uid == kKasmUid);
  CHECK(c.st_gid == kKasmGid);
  CHECK(k.st_uid == kKasmUid);
  CHECK(k.st_gid == kKasmGid);
}

// A configuration that installs `pair` as the nginx certificate.
config::Config with_pair(const PemPair& pair) {
  config::Config c;
  c.nginx_cert = pair.cert;
  c.nginx_key = Secret(pair.key);
  return c;
}

std::string ssl_site(const std::string& cert, const std::string& key) {
  return "server {\n  listen 443 ssl;\n  ssl_certificate " + cert + ";\n  ssl_certificate_key " + key +
         ";\n  return 200 \"tls\\n\";\n}\n";
}

// The root's docker.sock points at the world's engine, and an nginx site reads the pair
// from the certs directory mounted at /etc/nginx/kasm-certs.
void site_with_certs_dir(const DockerWorld& world, CertRoot& r) {
  r.link_docker_socket(world.socket());
  r.dir.write("conf/ssl.conf",
              ssl_site("/etc/nginx/kasm-certs/kasm_nginx.crt", "/etc/nginx/kasm-certs/kasm_nginx.key"));
}

std::string worker_pids(const DockerWorld& world) {
  std::string pids;
  std::istringstream in(world.docker({"exec", "kasm_proxy", "ps", "-o", "pid,args"}));
  std::string line;
  while (std::getline(in, line))
    if (line.find("worker process") != std::string::npos) pids += line.substr(0, line.find("nginx")) + ",";
  return pids;
}

} // namespace

TEST_CASE("docker-cert: certs directory mounted: files installed, nginx -t and reload run", "[docker][cert]") {
  KB_REQUIRE_DOCKER_WORLD();
  DockerWorld world;
  CertRoot r;
  site_with_certs_dir(world, r);
  world.run_proxy({"-v", r.certs.string() + ":/etc/nginx/kasm-certs", "-v",
                   (r.dir.path() / "conf").string() + ":/etc/nginx/conf.d"});
  REQUIRE(world.wait_for("kasm_proxy", "{{.State.Running}}", "true"));

  const auto fresh = r.pki.self_signed("fresh", "agent.example.com", "DNS:agent.example.com,IP:10.0.0.7");
  auto c = with_pair(fresh);
  c.external_fqdn = "agent.example.com";
  StepRun run(c, r.root);
  run.facts.merge({{steps::out::kAgentAddress, "10.0.0.7"}});
  auto step = steps::make_install_certificates();

  CHECK_FALSE(run.check(*step)); // the installer's pair is on disk
  const auto before = worker_pids(world);
  const auto outputs = run.apply(*step);
  CHECK(outputs.at("certificate_source") == "config");
  CHECK(outputs.at("certificate_sha256") == kasm::summarize_certificate(fresh.cert)->sha256);
  check_files(r, fresh.cert, fresh.key);
  // The container sees the new file, and the reload replaced nginx's workers.
  CHECK(world.docker({"exec", "kasm_proxy", "cat", "/etc/nginx/kasm-certs/kasm_nginx.crt"}) == fresh.cert);
  CHECK(worker_pids(world) != before);
  // Done is done: a second look finds it in place.
  const auto again = run.check(*step);
  REQUIRE(again);
  CHECK(again->at("certificate_sha256") == outputs.at("certificate_sha256"));

  SECTION("nginx rejecting the configuration puts the previous pair back") {
    r.dir.write("conf/zz-broken.conf", "this is not nginx syntax\n");
    const auto next = r.pki.self_signed("next", "agent.example.com", "DNS:agent.example.com");
    StepRun second(
        [&] {
          auto c2 = c;
          c2.nginx_cert = next.cert;
          c2.nginx_key = Secret(next.key);
          return c2;
        }(),
        r.root);
    std::string message;
    CHECK(error_code([&] { second.apply(*step); }, message) == ExitCode::kCertificate);
    CHECK(message.find("nginx in kasm_proxy rejects the new certificate (nginx -t exit 1)") != std::string::npos);
    CHECK(message.find("zz-broken.conf") != std::string::npos);
    check_files(r, fresh.cert, fresh.key);
  }
}

TEST_CASE("docker-cert: a kasm_proxy that stops while its pair is replaced is restarted and serves the new pair",
          "[docker][cert]") {
  // What CI saw: kasm_proxy had just been started by the installer, nginx read the new
  // certificate with the old key (two renames), exited 1, and `nginx -t` found the
  // container stopped. A torn read cannot be timed from here, so the container stands in
  // for it: PID 1 waits (no nginx yet) and the first `nginx -t` stops the container;
  // from the restart on, PID 1 is the real nginx and `nginx` is the real one.
  KB_REQUIRE_DOCKER_WORLD();
  DockerWorld world;
  CertRoot r;
  site_with_certs_dir(world, r);
  r.dir.write("bin/nginx",
              "#!/bin/sh\n"
              "if [ ! -e /tmp/stopped-once ]; then : > /tmp/stopped-once; kill -USR1 1; sleep 30; exit 1; fi\n"
              "exec /usr/sbin/nginx \"$@\"\n");
  REQUIRE(::chmod((r.dir.path() / "bin/nginx").c_str(), 0755) == 0);
  world.run_proxy({"-v", r.certs.string() + ":/etc/nginx/kasm-certs", "-v",
                   (r.dir.path() / "conf").string() + ":/etc/nginx/conf.d", "-v",
                   (r.dir.path() / "bin/nginx").string() + ":/usr/local/sbin/nginx:ro"},
                  {"/bin/sh", "-c",
                   "trap 'exit 1' USR1; [ -e /tmp/stopped-once ] && exec nginx -g 'daemon off;'; "
                   "while :; do sleep 0.05; done"});
  REQUIRE(world.wait_for("kasm_proxy", "{{.State.Running}}", "true"));
  const auto started_before = world.docker({"inspect", "-f", "{{.State.StartedAt}}", "kasm_proxy"});

  const auto fresh = r.pki.self_signed("fresh", "agent.example.com", "DNS:agent.example.com");
  auto c = with_pair(fresh);
  StepRun run(c, r.root);
  auto step = steps::make_install_certificates();
  log::Capture logs;
  const auto outputs = run.apply(*step);
  CHECK(outputs.at("certificate_sha256") == kasm::summarize_certificate(fresh.cert)->sha256);
  check_files(r, fresh.cert, fresh.key);
  CHECK(logs.text().find("kasm_proxy stopped while its certificate was replaced (exited (code 1))") !=
        std::string::npos);
  CHECK(world.docker({"inspect", "-f", "{{.State.StartedAt}}", "kasm_proxy"}) != started_before);
  REQUIRE(world.wait_for("kasm_proxy", "{{.State.Running}}", "true"));
  // PID 1 is nginx now, and it has the new pair loaded.
  CHECK(world.docker({"exec", "kasm_proxy", "cat", "/proc/1/cmdline"}).find("nginx") != std::string::npos);
  CHECK(world.docker({"exec", "kasm_proxy", "cat", "/etc/nginx/kasm-certs/kasm_nginx.crt"}) == fresh.cert);
}

TEST_CASE("docker-cert: files bind-mounted one by one (Kasm's layout): kasm_proxy is restarted", "[docker][cert]") {
  KB_REQUIRE_DOCKER_WORLD();
  DockerWorld world;
  CertRoot r;
  r.link_docker_socket(world.socket());
  r.dir.write("conf/ssl.conf", ssl_site("/etc/ssl/certs/kasm_nginx.crt", "/etc/ssl/private/kasm_nginx.key"));
  world.run_proxy({"-v", (r.certs / "kasm_nginx.crt").string() + ":/etc/ssl/certs/kasm_nginx.crt", "-v",
                   (r.certs / "kasm_nginx.key").string() + ":/etc/ssl/private/kasm_nginx.key", "-v",
                   (r.dir.path() / "conf").string() + ":/etc/nginx/conf.d:ro"});
  REQUIRE(world.wait_for("kasm_proxy", "{{.State.Running}}", "true"));
  const auto started_before = world.docker({"inspect", "-f", "{{.State.StartedAt}}", "kasm_proxy"});

  config::Config c;
  c.generate_self_signed = true;
  StepRun run(c, r.root);
  run.facts.merge({{steps::out::kAgentAddress, "10.9.8.7"}});
  auto step = steps::make_install_certificates();
  CHECK_FALSE(run.check(*step));
  const auto outputs = run.apply(*step);
  CHECK(outputs.at("certificate_source") == "generated");

  const auto cert = r.cert_on_disk();
  const auto leaf = kasm::summarize_certificate(cert);
  REQUIRE(leaf);
  CHECK(leaf->ip_addresses == std::vector<std::string>{"10.9.8.7"});
  CHECK(leaf->organization == kasm::kGeneratedOrganization);
  check_files(r, cert, r.key_on_disk());
  CHECK(cert != r.installer_pair.cert);

  // Restarted, running, and the container's own view of the file is the new one.
  CHECK(world.docker({"inspect", "-f", "{{.State.StartedAt}}", "kasm_proxy"}) != started_before);
  REQUIRE(world.wait_for("kasm_proxy", "{{.State.Running}}", "true"));
  CHECK(world.docker({"exec", "kasm_proxy", "cat", "/etc/ssl/certs/kasm_nginx.crt"}) == cert);

  // This instance's pair is recognised; another instance's address is not.
  CHECK(run.check(*step));
  StepRun other(c, r.root);
  other.facts.merge({{steps::out::kAgentAddress, "10.9.8.8"}});
  CHECK_FALSE(other.check(*step));
}

TEST_CASE("docker-cert: before kasm_proxy exists the pair is only written, for bin/start to mount", "[docker][cert]") {
  KB_REQUIRE_DOCKER_WORLD();
  DockerWorld world;
  CertRoot r;
  r.link_docker_socket(world.socket());
  const auto fresh = r.pki.self_signed("fresh", "agent.example.com", "DNS:agent.example.com");
  auto c = with_pair(fresh);
  StepRun run(c, r.root);
  auto step = steps::make_install_certificates();
  log::Capture capture;
  run.apply(*step);
  CHECK(r.cert_on_disk() == fresh.cert);
  CHECK(capture.text().find("kasm_proxy does not exist yet; nginx reads the new pair when bin/start creates it") !=
        std::string::npos);
  CHECK(run.check(*step));
}

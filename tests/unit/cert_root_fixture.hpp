#pragma once
// A machine root as Kasm's installer leaves it, for the install-certificates step:
// /etc/passwd and /etc/group with user kasm (uid 1234, group kasm 2345 — deliberately
// not its primary gid, so the group file is what decides), /opt/kasm/1.15.0/certs with
// the installer's own pair, and /opt/kasm/current as the installer's ABSOLUTE symlink.

#include "cert_fixtures.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/plan/step.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

#include <sys/stat.h>

namespace kb::test {

inline constexpr uid_t kKasmUid = 1234;
inline constexpr gid_t kKasmGid = 2345;

struct CertRoot {
  TempDir dir;
  CertFactory pki{dir};
  std::filesystem::path root = dir.path() / "root";
  std::filesystem::path certs = root / "opt/kasm/1.15.0/certs";
  PemPair installer_pair;

  CertRoot() {
    std::filesystem::create_directories(root / "etc");
    std::filesystem::create_directories(certs);
    std::filesystem::create_directories(root / "var/run");
    dir.write("root/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"
                                 "# a comment line\n"
                                 "kasm:x:1234:1234:Kasm:/opt/kasm:/usr/sbin/nologin\n");
    dir.write("root/etc/group", "root:x:0:\nbroken-line\nkasm:x:2345:\n");
    std::filesystem::create_symlink("/opt/kasm/1.15.0", root / "opt/kasm/current");
    installer_pair = pki.self_signed("installer", "localhost", "DNS:localhost");
    dir.write("root/opt/kasm/1.15.0/certs/kasm_nginx.crt", installer_pair.cert);
    dir.write("root/opt/kasm/1.15.0/certs/kasm_nginx.key", installer_pair.key);
    ::chmod((certs / "kasm_nginx.key").c_str(), 0600);
  }

  // A hard link (see DockerWorld::link_socket_into: a symlink out of the root is refused).
  void link_docker_socket(const std::string& real_socket) const {
    std::filesystem::create_hard_link(real_socket, root / "var/run/docker.sock");
  }

  std::string cert_on_disk() const { return read_file(certs / "kasm_nginx.crt"); }
  std::string key_on_disk() const { return read_file(certs / "kasm_nginx.key"); }
};

inline struct stat stat_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st;
}

// Runs the real step against `root`: check() first like the executor, then apply().
struct StepRun {
  config::Config config;
  std::filesystem::path root;
  plan::Facts facts;
  std::atomic<bool> cancelled{false};
  sys::ProcessRunner runner;
  net::HttpClient http;

  StepRun(config::Config c, std::filesystem::path r) : config(std::move(c)), root(std::move(r)) {}

  std::optional<plan::Outputs> check(plan::Step& step) {
    Machine machine{sys::RootFs(root), runner, http};
    const plan::StepContext ctx{config, machine, facts, cancelled};
    return step.check(ctx);
  }
  plan::Outputs apply(plan::Step& step) {
    Machine machine{sys::RootFs(root), runner, http};
    const plan::StepContext ctx{config, machine, facts, cancelled};
    return step.apply(ctx);
  }
  plan::Description describe(plan::Step& step) {
    Machine machine{sys::RootFs(root), runner, http};
    const plan::StepContext ctx{config, machine, facts, cancelled};
    return step.describe(ctx);
  }
};

inline ExitCode error_code(const std::function<void()>& f, std::string& message) {
  try {
    f();
  } catch (const kb::Error& e) {
    message = e.what();
    return e.code();
  }
  return ExitCode::kOk;
}

} // namespace kb::test

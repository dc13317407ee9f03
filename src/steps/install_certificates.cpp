// install-certificates: give kasm_proxy the operator's nginx pair (or a fresh self-signed
// one for this instance) and make nginx serve it. docs/kasm-installer.md §8, item 4.

#include "kasm_bootstrap/kasm/certificates.hpp"
#include "kasm_bootstrap/net/docker_client.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/accounts.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <thread>

namespace kb::steps {
namespace {

namespace fs = std::filesystem;

constexpr const char* kInstallLink = "/opt/kasm/current";
constexpr const char* kProxyContainer = "kasm_proxy";
constexpr mode_t kCertMode = 0644;
constexpr mode_t kKeyMode = 0600;
constexpr std::chrono::milliseconds kSettleTime{1500};

enum class Source { kInstaller, kConfig, kFiles, kGenerate };

Source source_of(const config::Config& c) {
  if (!c.nginx_cert.empty()) return Source::kConfig;
  if (!c.nginx_cert_path.empty()) return Source::kFiles;
  return c.generate_self_signed ? Source::kGenerate : Source::kInstaller;
}

const char* source_name(Source s) {
  switch (s) {
  case Source::kConfig: return "config";
  case Source::kFiles: return "files";
  case Source::kGenerate: return "generated";
  case Source::kInstaller: return "installer";
  }
  return "?";
}

// The pair named by nginx_cert_path / nginx_key_path, read inside the root; the key
// becomes a Secret at once, so no message can show it.
kasm::CertificatePair pair_from_files(const sys::RootFs& fs, const config::Config& c) {
  constexpr std::size_t kMaxPem = 1u << 20;
  const auto read = [&](const std::string& key, const std::string& path) {
    const auto text = fs.read_file(path, kMaxPem);
    if (!text) throw Error(ExitCode::kCertificate, key + " " + path + " does not exist");
    return *text;
  };
  return {read("nginx_cert_path", c.nginx_cert_path), Secret(read("nginx_key_path", c.nginx_key_path))};
}

// The names clients use to reach this agent: the external FQDN and the agent address.
std::vector<std::string> agent_names(const plan::StepContext& ctx) {
  std::vector<std::string> names;
  if (!ctx.config.external_fqdn.empty()) names.push_back(ctx.config.external_fqdn);
  auto address = ctx.facts.get(out::kAgentAddress).value_or(ctx.config.agent_address);
  if (!address.empty() && address != ctx.config.external_fqdn) names.push_back(address);
  return names;
}

// /opt/kasm/current is a symlink the installer makes with an absolute target
// (/opt/kasm/1.15.0); under a test root that target must be read inside the root too.
fs::path certs_dir(const sys::RootFs& root) {
  if (!root.is_real_root()) {
    const auto target = root.read_link(kInstallLink);
    if (target && target->is_absolute()) return *target / "certs";
  }
  return kasm::kCertsDir;
}

struct Paths {
  fs::path dir, cert, key; // machine paths
};

Paths paths(const sys::RootFs& root) {
  const auto dir = certs_dir(root);
  return {dir, dir / kasm::kCertFile, dir / kasm::kKeyFile};
}

bool has_mode(const sys::RootFs& root, const fs::path& machine_path, mode_t mode) {
  const auto st = root.stat(machine_path);
  return st && (st->st_mode & 07777) == mode;
}

fs::path canonical_or_same(const fs::path& p) {
  std::error_code ec;
  auto c = fs::weakly_canonical(p, ec);
  return ec ? p : c;
}

class InstallCertificates final : public plan::Step {
public:
  std::string_view id() const override { return id::kInstallCertificates; }
  std::vector<std::string_view> depends_on() const override { return {id::kInstallAgent, id::kDetectAddress}; }
  ExitCode failure_code() const override { return ExitCode::kCertificate; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    plan::Description d;
    const auto source = source_of(ctx.config);
    const auto p = paths(ctx.machine.fs);
    if (source == Source::kInstaller) {
      d.summary = "keep the certificate Kasm's installer generated (nginx_cert is blank)";
      d.actions.push_back({"note", p.cert.string(), "unchanged"});
      return d;
    }
    if (source == Source::kConfig) {
      const auto leaf = kasm::summarize_certificate(ctx.config.nginx_cert);
      d.summary = "install the configured nginx certificate" +
                  (leaf ? " (" + leaf->subject + ", valid until " + leaf->not_after + ")" : std::string());
    } else if (source == Source::kFiles) {
      d.summary = "install the nginx certificate pair from " + ctx.config.nginx_cert_path + " and " +
                  ctx.config.nginx_key_path + " (nginx_cert_path, nginx_key_path)";
    } else {
      std::string names;
      for (const auto& n : agent_names(ctx))
        names += (names.empty() ? "" : ", ") + n;
      d.summary = "generate a self-signed certificate for this instance (" +
                  (names.empty() ? std::string("names: the detected agent address") : "names: " + names) + ")";
    }
    d.actions.push_back({"check", "certificate and key", "key matches, not expired, chain order, names"});
    d.actions.push_back({"write", p.cert.string(), "mode 0644, owner kasm"});
    d.actions.push_back({"write", p.key.string(), "mode 0600, owner kasm"});
    d.actions.push_back({"http", ctx.config.docker_socket,
                         "when kasm_proxy already exists: docker exec kasm_proxy nginx -t && nginx -s reload (restart "
                         "when the files are bind-mounted one by one, or when kasm_proxy stops meanwhile)"});
    return d;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    const auto source = source_of(ctx.config);
    if (source == Source::kInstaller) return plan::Outputs{{"certificate_source", source_name(source)}};
    const auto& fs = ctx.machine.fs;
    const auto p = paths(fs);
    const auto cert = fs.read_file(p.cert);
    const auto key = fs.read_file(p.key);
    if (!cert || !key || !has_mode(fs, p.cert, kCertMode) || !has_mode(fs, p.key, kKeyMode)) return std::nullopt;
    if (source == Source::kConfig) {
      if (*cert != ctx.config.nginx_cert || *key != ctx.config.nginx_key.reveal()) return std::nullopt;
    } else if (source == Source::kFiles) {
      try {
        const auto wanted = pair_from_files(fs, ctx.config);
        if (*cert != wanted.cert_pem || *key != wanted.key_pem.reveal()) return std::nullopt;
      } catch (const std::exception&) {
        return std::nullopt; // apply() says what is wrong with the files
      }
    } else {
      // Ours only when we made it for exactly this instance's names: a pair baked into
      // the image was made for another address and must be replaced.
      const auto names = agent_names(ctx);
      const auto result = kasm::check_certificate_pair(*cert, *key, names);
      if (names.empty() || !result.ok() || !result.warnings.empty() ||
          result.leaf->organization != kasm::kGeneratedOrganization)
        return std::nullopt;
    }
    const auto leaf = kasm::summarize_certificate(*cert);
    return plan::Outputs{{"certificate_source", source_name(source)},
                         {"certificate_sha256", leaf ? leaf->sha256 : ""},
                         {"certificate_not_after", leaf ? leaf->not_after : ""}};
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto source = source_of(ctx.config);
    if (source == Source::kInstaller) return {{"certificate_source", source_name(source)}};
    const auto& fs = ctx.machine.fs;
    const auto p = paths(fs);
    const auto names = agent_names(ctx);

    kasm::CertificatePair pair;
    if (source == Source::kConfig)
      pair = {ctx.config.nginx_cert, ctx.config.nginx_key};
    else if (source == Source::kFiles)
      pair = pair_from_files(fs, ctx.config);
    else
      pair = kasm::generate_self_signed(names);

    // Everything that can refuse does so before the first byte is written.
    const auto verdict = kasm::check_certificate_pair(pair.cert_pem, pair.key_pem.reveal(), names);
    if (!verdict.ok()) {
      std::string why;
      for (const auto& e : verdict.errors)
        why += (why.empty() ? "" : "; ") + e.key + " " + e.message;
      throw Error(ExitCode::kCertificate, "the nginx certificate was not installed: " + why);
    }
    for (const auto& w : verdict.warnings)
      log::warn("{}: {} {}", id(), w.key, w.message);
    if (!fs.exists(p.dir))
      throw Error(ExitCode::kCertificate,
                  fs.host_path(p.dir).string() + " does not exist: Kasm's installer did not leave its certs directory");
    const auto owner = sys::resolve_owner(fs, "kasm", ExitCode::kCertificate);
    const net::DockerClient docker(ctx.machine.http, fs.host_path(ctx.config.docker_socket));
    // Before start-services (install.sh -D creates no container) there is no proxy yet, and
    // nginx reads the pair when bin/start creates it; on a re-run the proxy is told.
    const auto proxy = docker.inspect_container(kProxyContainer);

    const auto old_cert = fs.read_file(p.cert);
    const auto old_key = fs.read_file(p.key);
    const auto& leaf = *verdict.leaf;
    plan::Outputs installed{{"certificate_source", source_name(source)},
                            {"certificate_sha256", leaf.sha256},
                            {"certificate_not_after", leaf.not_after}};
    write_pair(fs, p, pair, owner);
    if (!proxy) {
      log::info("{}: kasm_proxy does not exist yet; nginx reads the new pair when bin/start creates it", id());
      return installed;
    }
    try {
      activate(docker, *proxy, fs, p);
    } catch (...) {
      restore(fs, p, old_cert, old_key, owner);
      throw;
    }
    return installed;
  }

private:
  static void write_pair(const sys::RootFs& fs, const Paths& p, const kasm::CertificatePair& pair,
                         sys::FileOwner owner) {
    // Both files are complete and synced before either replaces its target, so a
    // failure in between leaves the old pair, never a half-written file.
    sys::AtomicFile key(fs.host_path(p.key), kKeyMode);
    sys::AtomicFile cert(fs.host_path(p.cert), kCertMode);
    key.write(pair.key_pem.reveal());
    cert.write(pair.cert_pem);
    key.set_owner(owner);
    cert.set_owner(owner);
    key.commit();
    cert.commit();
  }

  static void restore(const sys::RootFs& fs, const Paths& p, const std::optional<std::string>& old_cert,
                      const std::optional<std::string>& old_key, sys::FileOwner owner) {
    try {
      if (old_key) fs.write_file_atomic(p.key, *old_key, kKeyMode, owner);
      if (old_cert) fs.write_file_atomic(p.cert, *old_cert, kCertMode, owner);
      log::warn("install-certificates: put the previous certificate and key back");
    } catch (const std::exception& e) {
      log::error("install-certificates: could not put the previous certificate back: {}", e.what());
    }
  }

  // Makes nginx in kasm_proxy serve the files now on disk.
  void activate(const net::DockerClient& docker, const net::ContainerState& proxy, const sys::RootFs& fs,
                const Paths& p) const {
    if (!proxy.running) {
      log::info("{}: kasm_proxy is {}; nginx reads the new certificate when it starts", id(), proxy.describe());
      return;
    }
    // Kasm mounts the two files one by one; a bind-mounted file keeps showing the old
    // inode after our rename, so only a restart makes the container see the new one.
    const auto cert_host = canonical_or_same(fs.host_path(p.cert));
    const auto key_host = canonical_or_same(fs.host_path(p.key));
    for (const auto& m : proxy.mounts) {
      const auto source = canonical_or_same(m.source);
      if (m.type == "bind" && (source == cert_host || source == key_host)) {
        log::info("{}: kasm_proxy mounts {} as a single file; restarting the container", id(), m.source);
        restart_proxy(docker, "after the restart for the new certificate");
        return;
      }
    }
    const auto test = exec_while_running(docker, {"nginx", "-t"});
    if (test && !test->success()) throw rejected(*test);
    if (test) {
      const auto reload = exec_while_running(docker, {"nginx", "-s", "reload"});
      if (reload && !reload->success())
        throw Error(ExitCode::kCertificate, "nginx -s reload in kasm_proxy failed (exit " +
                                                std::to_string(reload->exit_code) +
                                                "): " + output_brief(reload->stderr_text));
      if (reload) {
        log::info("{}: nginx in kasm_proxy reloaded", id());
        return;
      }
    }
    // kasm_proxy was running when we looked and stopped before nginx could be told: a
    // proxy that was still starting can read one old and one new file while they are
    // replaced (two renames), find they do not match, and exit. The pair on disk is
    // whole now, so a start loads it; nginx -t then confirms the container took it.
    const auto now = docker.inspect_container(kProxyContainer);
    log::warn("{}: kasm_proxy stopped while its certificate was replaced ({}); restarting it", id(),
              now ? now->describe() : "container gone");
    restart_proxy(docker, "after it stopped while its certificate was replaced");
    const auto confirm = docker.exec(kProxyContainer, {"nginx", "-t"});
    if (!confirm.success()) throw rejected(confirm);
    log::info("{}: kasm_proxy restarted with the new certificate", id());
  }

  static void restart_proxy(const net::DockerClient& docker, const std::string& when) {
    docker.restart_container(kProxyContainer);
    const auto after = docker.inspect_container(kProxyContainer);
    if (!after || !after->running || after->restarting)
      throw Error(ExitCode::kCertificate,
                  "kasm_proxy did not come back " + when + ": " + (after ? after->describe() : "container gone"));
  }

  // Runs argv in kasm_proxy; nullopt when the command could not run or did not finish
  // because the container is no longer running. A failure while it still runs is the
  // command's answer (an ExecResult) or the engine's error (a kb::Error), as it was.
  static std::optional<net::ExecResult> exec_while_running(const net::DockerClient& docker,
                                                           const std::vector<std::string>& argv) {
    // The engine kills an exec's process before it marks the container stopped (seen by
    // the docker-cert tests; docs/platform.md), so a
    // container that is going down still reads "running" for a moment: look for up to
    // kSettleTime before taking the failure as the command's own.
    const auto still_running = [&] {
      const auto until = std::chrono::steady_clock::now() + kSettleTime;
      for (;;) {
        const auto now = docker.inspect_container(kProxyContainer);
        if (!now || !now->running || now->restarting) return false;
        if (std::chrono::steady_clock::now() >= until) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    };
    try {
      auto result = docker.exec(kProxyContainer, argv);
      if (result.success() || still_running()) return result;
    } catch (const Error&) {
      if (still_running()) throw;
    }
    return std::nullopt;
  }

  static Error rejected(const net::ExecResult& test) {
    return Error(ExitCode::kCertificate, "nginx in kasm_proxy rejects the new certificate (nginx -t exit " +
                                             std::to_string(test.exit_code) + "): " + output_brief(test.stderr_text));
  }

  // nginx explains itself over several lines ("[emerg] ...", "test failed"): keep them all, on one line.
  static std::string output_brief(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
      text.pop_back();
    std::string out;
    for (char c : text)
      out += c == '\n' ? std::string(" | ") : std::string(1, c);
    return out.size() > 600 ? "..." + out.substr(out.size() - 600) : out;
  }
};

} // namespace

std::unique_ptr<plan::Step> make_install_certificates() { return std::make_unique<InstallCertificates>(); }

} // namespace kb::steps

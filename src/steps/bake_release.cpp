// bake-release (prebake, at image build time): the same placeholder install as
// install-agent (install.sh -D -N, values no manager accepts), so an instance made from the
// image only configures and starts; then drop the installer's nginx key, which every
// instance made from the image would otherwise share, and record the bake in the manifest.

#include "kasm_bootstrap/kasm/agent_config.hpp"
#include "kasm_bootstrap/kasm/bake_manifest.hpp"
#include "kasm_bootstrap/kasm/certificates.hpp"
#include "kasm_bootstrap/kasm/installer.hpp"
#include "kasm_bootstrap/kasm/release_cache.hpp"
#include "kasm_bootstrap/kasm/release_download.hpp"
#include "kasm_bootstrap/kasm/release_layout.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/package_locks.hpp"
#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/util/utc_time.hpp"
#include "kasm_bootstrap/version.hpp"

#include <fmt/format.h>

#include <filesystem>

namespace kb::steps {
namespace {

namespace fs = std::filesystem;

// "/opt/kasm/1.15.0" from the /opt/kasm/current link, relative or absolute.
std::string installed_version(const sys::RootFs& root) {
  if (auto name = kasm::installed_release_dir_name(root)) return *name;
  throw Error(ExitCode::kInstall,
              std::string("install.sh exited 0 but did not link ") + kasm::kCurrentLink + " to a release directory");
}

class BakeRelease final : public plan::Step {
public:
  std::string_view id() const override { return id::kBakeRelease; }
  std::vector<std::string_view> depends_on() const override { return {id::kFetchRelease, id::kWaitPackageLocks}; }
  ExitCode failure_code() const override { return ExitCode::kInstall; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    plan::Description d;
    d.summary = "install Docker and the Kasm agent with install.sh -D -N (installed, not started) and placeholder "
                "registration values; record the bake";
    d.actions.push_back({"run", kasm::describe_installer(placeholder_install(ctx)),
                         "stdin /dev/null; DEBIAN_FRONTEND=noninteractive; a random placeholder token; deadline " +
                             std::to_string(ctx.config.install_timeout_seconds) + " s"});
    if (!ctx.config.service_images.empty())
      d.actions.push_back({"check", ctx.config.service_images, "offline service images tarball exists (-s)"});
    d.actions.push_back({"remove", "/opt/kasm/<version>/certs/kasm_nginx.key",
                         "the installer's key would be shared by every instance; each makes its own at boot"});
    d.actions.push_back({"write", kasm::kBakeManifestPath, "release version, sha256, url, install dir, mode 0644"});
    return d;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    const auto verdict = kasm::inspect_bake(ctx.machine.fs, ctx.config);
    if (verdict.state != kasm::BakeState::kUsable) return std::nullopt;
    return plan::Outputs{{"bake_manifest", kasm::kBakeManifestPath},
                         {"release_version", verdict.manifest->release_version}};
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto& c = ctx.config;
    const auto& root = ctx.machine.fs;
    if (!c.service_images.empty() && !root.exists(c.service_images))
      throw Error(ExitCode::kInstall, "service_images " + c.service_images + " does not exist (looked at " +
                                          root.host_path(c.service_images).string() + ")");
    const auto outcome = run_placeholder_install(ctx);

    kasm::BakeManifest m;
    m.release_version = installed_version(root);
    m.install_dir = "/opt/kasm/" + m.release_version;
    const auto version = kasm::parse_kasm_version(m.release_version);
    const auto layout = version ? kasm::layout_for(*version) : std::nullopt;
    if (!layout)
      throw Error(ExitCode::kInstall, std::string(kasm::kCurrentLink) + " points to " + m.release_version +
                                          ", not a Kasm release this kasm-bootstrap knows (" +
                                          kasm::kSupportedKasmVersions + ")");
    m.agent_config = m.install_dir + "/" + layout->agent_config;
    const auto yaml = root.read_file(m.agent_config, 4u << 20);
    if (!yaml) throw Error(ExitCode::kInstall, "install.sh exited 0 but did not write " + m.agent_config);
    kasm::check_agent_config(*yaml, m.agent_config);

    const auto certs = fs::path(m.install_dir) / "certs";
    if (const auto cert = root.read_file(certs / kasm::kCertFile))
      if (const auto leaf = kasm::summarize_certificate(*cert)) m.baked_cert_sha256 = leaf->sha256;
    if (root.exists(certs / kasm::kKeyFile)) {
      root.remove(certs / kasm::kKeyFile);
      log::info("{}: removed the installer's nginx key; every instance makes its own pair at boot", id());
    }
    m.nginx_key_removed = !root.exists(certs / kasm::kKeyFile);
    m.release_sha256 = kasm::normalize_digest(c.release_sha256);
    m.release_url = c.release_url;
    m.service_images = c.service_images;
    m.proxy_port = c.proxy_port;
    m.placeholder_server_id = kasm::kPlaceholderServerId;
    m.kasm_bootstrap_version = kVersion;
    m.baked_at = util::utc_timestamp();
    kasm::write_bake_manifest(root, m);
    log::info("{}: baked Kasm {} into {}; manifest {}", id(), m.release_version, m.install_dir,
              kasm::kBakeManifestPath);
    return {{"bake_manifest", kasm::kBakeManifestPath},
            {"release_version", m.release_version},
            {"installer_attempts", std::to_string(outcome.attempts)}};
  }
};

} // namespace

std::unique_ptr<plan::Step> make_bake_release() { return std::make_unique<BakeRelease>(); }

} // namespace kb::steps

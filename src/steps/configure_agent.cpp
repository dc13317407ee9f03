// configure-agent: give the installed release this instance's registration. install.sh
// (at boot, or when the image was baked) wrote placeholders; here the registration keys of
// the agent configuration are written with yaml-cpp, and the other place the installer
// writes the manager, the network sidecar's api_hostname (docs/kasm-installer.md §2,
// "Every place a value is written"). The token goes only into the agent configuration,
// never onto a command line or into a message.

#include "kasm_bootstrap/kasm/agent_config.hpp"
#include "kasm_bootstrap/kasm/health.hpp"
#include "kasm_bootstrap/kasm/release_layout.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/accounts.hpp"

#include <algorithm>

namespace kb::steps {
namespace {

// install.sh 1.16.0 install_network_sidecar_plugin: MANAGER:PORT for the sidecar plugin,
// and an empty api_hostname_external; /var/run is a tmpfs, so after a reboot (and on a
// baked image) only we write it.
constexpr const char* kSidecarDir = "/var/run/kasm-sidecar";
constexpr const char* kSidecarApiHostname = "/var/run/kasm-sidecar/api_hostname";
constexpr const char* kSidecarApiHostnameExternal = "/var/run/kasm-sidecar/api_hostname_external";

// --skip-egress: install.sh installs no sidecar plugin and writes no api_hostname.
bool uses_sidecar(const config::Config& c) {
  return std::find(c.install_args.begin(), c.install_args.end(), "--skip-egress") == c.install_args.end();
}

std::string sidecar_api_hostname(const config::Config& c) {
  return kasm::manager_host_port(c.manager_address, c.manager_port) + "\n";
}

class ConfigureAgent final : public plan::Step {
public:
  std::string_view id() const override { return id::kConfigureAgent; }
  std::vector<std::string_view> depends_on() const override {
    return {id::kDetectAddress, id::kInstallAgent, id::kCheckManager};
  }
  ExitCode failure_code() const override { return ExitCode::kInstall; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto& c = ctx.config;
    const auto r = registration(ctx);
    plan::Description d;
    d.summary = "register this instance in the installed agent configuration (" + kasm::registration_keys() + ")";
    const auto installed = kasm::installed_release(ctx.machine.fs);
    const std::string path = installed ? installed->agent_config().string()
                                       : std::string(kasm::kCurrentLink) + "/<agent configuration of the release>";
    d.actions.push_back({"write", path,
                         "server_id " + r.server_id + ", public_hostname " +
                             (r.public_hostname.empty() ? "<address from detect-address>" : r.public_hostname) +
                             ", provider " + (r.provider.empty() ? "(the release's)" : "'" + r.provider + "'") +
                             ", agent port " + std::to_string(r.agent_public_port) + ", manager " + c.manager_address +
                             " port " + std::to_string(r.manager_public_port) +
                             ", token ****; other keys kept; mode 0600, owner kasm"});
    if (uses_sidecar(c))
      d.actions.push_back({"write", kSidecarApiHostname, sidecar_api_hostname(c).substr(0, 200) + " (mode 0644)"});
    return d;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    try {
      const auto& fs = ctx.machine.fs;
      const auto installed = kasm::installed_release(fs);
      if (!installed) return std::nullopt;
      const auto path = installed->agent_config().string();
      const auto text = fs.read_file(path, 4u << 20);
      if (!text || !kasm::agent_config_matches(*text, registration(ctx), path)) return std::nullopt;
      const auto st = fs.stat(path);
      if (!st || (st->st_mode & 07777) != 0600) return std::nullopt;
      if (uses_sidecar(ctx.config) && fs.read_file(kSidecarApiHostname) != sidecar_api_hostname(ctx.config))
        return std::nullopt;
      return outputs(ctx, path);
    } catch (const std::exception&) {
      return std::nullopt; // apply() reports the problem with the file
    }
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto& fs = ctx.machine.fs;
    const auto r = registration(ctx);
    if (r.public_hostname.empty()) throw Error(ExitCode::kAddress, "no agent address: detect-address produced none");
    const auto installed = kasm::installed_release(fs);
    if (!installed)
      throw Error(ExitCode::kInstall, std::string(kasm::kCurrentLink) +
                                          " does not link an installed Kasm release this kasm-bootstrap knows (" +
                                          kasm::kSupportedKasmVersions + ")");
    const auto path = installed->agent_config().string();
    const auto owner = sys::resolve_owner(fs, "kasm", ExitCode::kInstall);
    kasm::rewrite_agent_config_file(fs, path, r, owner);
    if (uses_sidecar(ctx.config)) {
      fs.create_directories(kSidecarDir, 0755);
      fs.write_file_atomic(kSidecarApiHostname, sidecar_api_hostname(ctx.config), 0644);
      if (!fs.exists(kSidecarApiHostnameExternal)) fs.write_file_atomic(kSidecarApiHostnameExternal, "\n", 0644);
    }
    return outputs(ctx, path);
  }

private:
  static kasm::AgentRegistration registration(const plan::StepContext& ctx) {
    const auto& c = ctx.config;
    kasm::AgentRegistration r;
    r.server_id = c.server_id;
    r.public_hostname = ctx.facts.get(out::kAgentAddress).value_or(c.agent_address);
    r.provider = c.provider;
    r.manager_hostnames = {c.manager_address};
    r.manager_token = &c.manager_token;
    r.agent_public_port = c.proxy_port;
    r.manager_public_port = c.manager_port;
    return r;
  }
  static plan::Outputs outputs(const plan::StepContext& ctx, const std::string& path) {
    return {{"agent_config", path}, {"server_id", ctx.config.server_id}};
  }
};

} // namespace

std::unique_ptr<plan::Step> make_configure_agent() { return std::make_unique<ConfigureAgent>(); }

} // namespace kb::steps

// install-agent: run the release's install.sh as a Docker Agent so it registers with the
// manager. The token has to be in the installer's argv; everything we print masks it.

#include "kasm_bootstrap/kasm/installer.hpp"
#include "kasm_bootstrap/kasm/release_cache.hpp"
#include "kasm_bootstrap/kasm/release_layout.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/package_locks.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace kb::steps {
namespace {

constexpr const char* kInstallDir = "/opt/kasm/current";

// The server id of an agent install already on this machine, if any, read from where
// its version keeps the agent configuration.
std::optional<std::string> installed_server_id(const sys::RootFs& fs) {
  const auto config = kasm::installed_agent_config(fs);
  if (!config) return std::nullopt;
  try {
    const auto text = fs.read_file(*config, 1u << 20);
    if (!text) return std::nullopt;
    const auto doc = YAML::Load(*text);
    const auto id = doc["agent"]["server_id"];
    if (id && id.IsScalar()) return id.as<std::string>();
  } catch (const std::exception& e) {
    log::debug("{} is unreadable: {}", config->string(), e.what());
  }
  return std::nullopt;
}

// Where install.sh writes the agent configuration: the installed version's path, or
// (before the install) the one the release's version names.
std::string agent_config_path(const plan::StepContext& ctx) {
  if (auto installed = kasm::installed_agent_config(ctx.machine.fs)) return installed->string();
  const auto version = kasm::parse_kasm_version(ctx.facts.get(out::kReleaseVersion).value_or(""));
  const auto layout = version ? kasm::layout_for(*version) : std::nullopt;
  return layout ? std::string(kInstallDir) + "/" + layout->agent_config
                : "the agent configuration of the release's Kasm version";
}

kasm::InstallerInvocation invocation_for(const plan::StepContext& ctx, const std::string& address,
                                         const std::string& release_dir) {
  const auto& c = ctx.config;
  const auto& fs = ctx.machine.fs;
  kasm::InstallerInvocation in;
  in.install_script = fs.host_path(std::filesystem::path(release_dir) / "install.sh");
  in.temp_dir = fs.host_path(c.state_dir);
  in.agent_address = address;
  in.manager_address = c.manager_address;
  in.server_id = c.server_id;
  in.provider = c.provider;
  in.manager_token = &c.manager_token;
  in.extra_args = c.install_args;
  in.timeout = std::chrono::seconds(c.install_timeout_seconds);
  in.lock_timeout = std::chrono::seconds(c.lock_timeout_seconds);
  in.cancel = &ctx.cancelled;
  return in;
}

class InstallAgent final : public plan::Step {
public:
  std::string_view id() const override { return id::kInstallAgent; }
  std::vector<std::string_view> depends_on() const override {
    return {id::kDetectAddress, id::kEnsureSwap, id::kFetchRelease, id::kWaitPackageLocks};
  }
  ExitCode failure_code() const override { return ExitCode::kInstall; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto& c = ctx.config;
    plan::Description d;
    d.summary = "run the release's install.sh as agent so it registers with the manager";
    if (auto id = installed_server_id(ctx.machine.fs); id && *id == c.server_id) {
      d.actions.push_back({"note", agent_config_path(ctx), "an agent with server id " + *id + " is already installed"});
      return d;
    }
    std::string address = ctx.facts.get(out::kAgentAddress).value_or(c.agent_address);
    if (address.empty()) address = "<address from detect-address>";
    const auto release_dir = ctx.facts.get(out::kReleaseDir).value_or(kasm::release_paths(c).release_dir.string());
    auto in = invocation_for(ctx, address, release_dir);
    d.actions.push_back({"run", sys::describe_command(kasm::installer_argv(in)),
                         fmt::format("stdin /dev/null; DEBIAN_FRONTEND=noninteractive; APT_CONFIG={}/apt-config.* "
                                     "(DPkg::Lock::Timeout {} s, removed afterwards); deadline {} s kills the process "
                                     "group; one retry after an apt lock failure",
                                     c.state_dir, c.lock_timeout_seconds, c.install_timeout_seconds)});
    d.actions.push_back({"check", agent_config_path(ctx), "written by install.sh"});
    return d;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    const auto id = installed_server_id(ctx.machine.fs);
    if (id && *id == ctx.config.server_id) return plan::Outputs{{"install_dir", kInstallDir}};
    return std::nullopt;
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto& c = ctx.config;
    std::string address = ctx.facts.get(out::kAgentAddress).value_or(c.agent_address);
    if (address.empty()) throw Error(ExitCode::kAddress, "no agent address: detect-address produced none");
    const auto release_dir = ctx.facts.get(out::kReleaseDir).value_or(kasm::release_paths(c).release_dir.string());
    ctx.machine.fs.create_directories(c.state_dir, 0700);

    auto in = invocation_for(ctx, address, release_dir);
    // Another apt can start between wait-package-locks and now (unattended-upgrades).
    in.before_attempt = [&] {
      sys::LockWaitOptions options;
      options.timeout = std::chrono::seconds(c.lock_timeout_seconds);
      options.cancel = &ctx.cancelled;
      options.on_holder = [](const sys::LockHolder& h) { log::info("waiting for {}", h.describe()); };
      sys::wait_for_package_locks(ctx.machine.fs, options);
    };
    const auto outcome = kasm::run_installer(ctx.machine.processes, in);

    const auto id = installed_server_id(ctx.machine.fs);
    const auto config = agent_config_path(ctx);
    if (!id) throw Error(ExitCode::kInstall, "install.sh exited 0 but did not write " + config);
    if (*id != c.server_id)
      throw Error(ExitCode::kInstall,
                  fmt::format("install.sh wrote server id {} to {}, expected {}", *id, config, c.server_id));
    return {{"install_dir", kInstallDir}, {"installer_attempts", std::to_string(outcome.attempts)}};
  }
};

} // namespace

std::unique_ptr<plan::Step> make_install_agent() { return std::make_unique<InstallAgent>(); }

} // namespace kb::steps

// start-services: start Kasm's services the way Kasm does, with the installed release's
// bin/start (bin/utils/pull, then `docker compose up -d` on the release's compose file;
// docs/kasm-installer.md §3). install.sh -D created no container, on a baked image as at
// boot, so this is what creates kasm_agent and kasm_proxy.

#include "kasm_bootstrap/kasm/health.hpp"
#include "kasm_bootstrap/kasm/installer.hpp"
#include "kasm_bootstrap/kasm/release_layout.hpp"
#include "kasm_bootstrap/net/docker_client.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/util/log.hpp"

namespace kb::steps {
namespace {

class StartServices final : public plan::Step {
public:
  std::string_view id() const override { return id::kStartServices; }
  std::vector<std::string_view> depends_on() const override {
    return {id::kConfigureAgent, id::kInstallCertificates, id::kEnsureSwap};
  }
  ExitCode failure_code() const override { return ExitCode::kDocker; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto& c = ctx.config;
    plan::Description d;
    d.summary = "start Kasm's services with the release's bin/start (docker compose up -d)";
    const auto installed = kasm::installed_release(ctx.machine.fs);
    const std::string script = installed ? installed->start_script().string() : "/opt/kasm/current/bin/start";
    d.actions.push_back({"run", "bash " + script,
                         "in " + c.state_dir + "/" + kasm::kScriptWorkDir + " (0700); DOCKER_HOST=unix://" +
                             c.docker_socket + "; stdin /dev/null; deadline " +
                             std::to_string(c.start_timeout_seconds) + " s kills the process group"});
    for (const auto name : kasm::kAgentContainers)
      d.actions.push_back({"check", c.docker_socket, "container " + std::string(name) + " running"});
    return d;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    try {
      if (!running(ctx)) return std::nullopt;
      return plan::Outputs{{"started", ""}};
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto installed = kasm::installed_release(ctx.machine.fs);
    if (!installed)
      throw Error(ExitCode::kInstall, std::string(kasm::kCurrentLink) + " does not link an installed Kasm release");
    const auto script = ctx.machine.fs.host_path(installed->start_script());
    kasm::run_release_start(ctx.machine.processes, script, script_run(ctx, ctx.config.start_timeout_seconds));
    // compose up -d returns once the containers are created and started; one that exits
    // at once is verify-health's to report, with its state.
    const auto client = docker(ctx);
    std::string created;
    for (const auto name : kasm::kAgentContainers) {
      const auto state = client.inspect_container(name);
      if (!state)
        throw Error(ExitCode::kDocker, "bin/start succeeded but container " + std::string(name) +
                                           " does not exist (Docker Engine at " + client.socket().string() +
                                           "); is the release's compose file the agent's?");
      created += (created.empty() ? "" : ",") + std::string(name);
    }
    log::info("{}: bin/start created {}", id(), created);
    return {{"started", created}};
  }

private:
  static net::DockerClient docker(const plan::StepContext& ctx) {
    return net::DockerClient(ctx.machine.http, ctx.machine.fs.host_path(ctx.config.docker_socket));
  }
  static bool running(const plan::StepContext& ctx) {
    const auto client = docker(ctx);
    for (const auto name : kasm::kAgentContainers) {
      const auto state = client.inspect_container(name);
      if (!state || !state->running) return false;
    }
    return true;
  }
};

} // namespace

std::unique_ptr<plan::Step> make_start_services() { return std::make_unique<StartServices>(); }

} // namespace kb::steps

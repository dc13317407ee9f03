// start-services (fast path): install.sh -D created Kasm's containers and left them
// stopped; start them through the Docker Engine API (no docker CLI, no token anywhere).

#include "kasm_bootstrap/kasm/health.hpp"
#include "kasm_bootstrap/net/docker_client.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <algorithm>

namespace kb::steps {
namespace {

class StartServices final : public plan::Step {
public:
  std::string_view id() const override { return id::kStartServices; }
  std::vector<std::string_view> depends_on() const override {
    return {id::kEnsureDocker, id::kConfigureAgent, id::kInstallCertificates, id::kEnsureSwap};
  }
  ExitCode failure_code() const override { return ExitCode::kDocker; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    plan::Description d;
    d.summary = "start Kasm's baked containers through the Docker Engine API";
    for (const auto name : kasm::kAgentContainers)
      d.actions.push_back({"http", ctx.config.docker_socket,
                           "POST /containers/" + std::string(name) + "/start (304 = already running)"});
    d.actions.push_back({"http", ctx.config.docker_socket, "start any other stopped kasm_* container"});
    return d;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    try {
      const auto client = docker(ctx);
      for (const auto name : kasm::kAgentContainers) {
        const auto state = client.inspect_container(name);
        if (!state || !state->running) return std::nullopt;
      }
      return plan::Outputs{{"started", ""}};
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto client = docker(ctx);
    std::vector<std::string> names(kasm::kAgentContainers.begin(), kasm::kAgentContainers.end());
    // Newer releases add containers (RDP gateways...); they were baked stopped too.
    for (const auto& c : client.list_containers(true))
      for (const auto& n : c.names)
        if (n.rfind("kasm_", 0) == 0 && std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    std::string started;
    for (const auto& name : names) {
      if (client.start_container(name)) {
        started += (started.empty() ? "" : ",") + name;
        log::info("{}: started {}", id(), name);
      } else {
        log::info("{}: {} was already running", id(), name);
      }
    }
    return {{"started", started}};
  }

private:
  static net::DockerClient docker(const plan::StepContext& ctx) {
    return net::DockerClient(ctx.machine.http, ctx.machine.fs.host_path(ctx.config.docker_socket));
  }
};

} // namespace

std::unique_ptr<plan::Step> make_start_services() { return std::make_unique<StartServices>(); }

} // namespace kb::steps

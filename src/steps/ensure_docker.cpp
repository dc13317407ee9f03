// ensure-docker (fast path): the baked image has Docker installed but an instance must
// not assume it is up yet. Where systemd runs, ask it over D-Bus to start docker.service
// and wait for the job; elsewhere (containers, test roots) only wait for the socket.

#include "kasm_bootstrap/net/docker_client.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/systemd_units.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <fmt/format.h>

#include <thread>

namespace kb::steps {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kUnit = "docker.service";

class EnsureDocker final : public plan::Step {
public:
  std::string_view id() const override { return id::kEnsureDocker; }
  std::vector<std::string_view> depends_on() const override { return {id::kPreflight}; }
  ExitCode failure_code() const override { return ExitCode::kDocker; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto& c = ctx.config;
    plan::Description d;
    d.summary = fmt::format("make sure the Docker Engine runs (deadline {} s)", c.docker_start_timeout_seconds);
    if (sys::systemd_in_charge(ctx.machine.fs))
      d.actions.push_back({"run", "D-Bus org.freedesktop.systemd1.Manager.StartUnit docker.service replace",
                           "then wait for ActiveState=active"});
    else
      d.actions.push_back({"note", "systemd",
                           "not in charge here (root is not / or no /run/systemd/system): only wait "
                           "for the Docker socket"});
    d.actions.push_back({"wait", c.docker_socket, "GET /_ping answers OK"});
    return d;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    if (docker(ctx).ping()) return plan::Outputs{{"docker", "answering"}};
    return std::nullopt;
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto timeout = std::chrono::seconds(ctx.config.docker_start_timeout_seconds);
    const auto deadline = Clock::now() + timeout;
    plan::Outputs out;
    if (sys::systemd_in_charge(ctx.machine.fs)) {
      sys::UnitStartOptions options;
      options.timeout = timeout;
      const auto started = sys::start_unit_and_wait(kUnit, options);
      out["docker_started_by"] = "systemd job " + started.job;
    } else {
      log::info("{}: systemd is not in charge of {} (root is not / or no /run/systemd/system); waiting for the "
                "Docker socket to answer",
                id(), ctx.machine.fs.root().string());
      out["docker_started_by"] = "not systemd: waited for the socket";
    }
    const auto client = docker(ctx);
    while (!client.ping()) {
      if (ctx.cancelled.load()) throw Error(ExitCode::kInterrupted, "interrupted while waiting for the Docker Engine");
      if (Clock::now() >= deadline)
        throw Error(ExitCode::kDocker, fmt::format("the Docker Engine at {} did not answer within {} s",
                                                   client.socket().string(), timeout.count()));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    out["docker"] = "answering";
    return out;
  }

private:
  static net::DockerClient docker(const plan::StepContext& ctx) {
    return net::DockerClient(ctx.machine.http, ctx.machine.fs.host_path(ctx.config.docker_socket));
  }
};

} // namespace

std::unique_ptr<plan::Step> make_ensure_docker() { return std::make_unique<EnsureDocker>(); }

} // namespace kb::steps

// verify-health: the run ends only when Kasm's containers run and the manager answers,
// waiting up to health_timeout_seconds because containers take a while to turn healthy.

#include "kasm_bootstrap/kasm/health.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/util/interruptible_sleep.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <fmt/format.h>

#include <chrono>

namespace kb::steps {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRetryInterval = std::chrono::seconds(2);

class VerifyHealth final : public plan::Step {
public:
  std::string_view id() const override { return id::kVerifyHealth; }
  std::vector<std::string_view> depends_on() const override { return {id::kStartServices, id::kBlockMetadata}; }
  ExitCode failure_code() const override { return ExitCode::kHealth; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto& c = ctx.config;
    plan::Description d;
    d.summary = fmt::format("wait up to {} s for kasm_agent, kasm_proxy and the manager to be healthy",
                            c.health_timeout_seconds);
    for (const auto name : kasm::kAgentContainers)
      d.actions.push_back({"check", "container " + std::string(name), "running, and healthy if it has a health check"});
    std::string tls = c.manager_tls_verify ? "TLS verified" : "TLS NOT verified (manager_tls_verify=false)";
    if (c.manager_tls_verify && !c.manager_ca.empty()) tls += " against " + c.manager_ca;
    d.actions.push_back(
        {"http", kasm::manager_health_url(c.manager_address, c.manager_port), "expects \"ok\": true; " + tls});
    if (c.block_container_metadata)
      d.actions.push_back({"check", "nftables DOCKER-USER", "the DROP rule for the metadata service is present"});
    return d;
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto deadline = Clock::now() + std::chrono::seconds(ctx.config.health_timeout_seconds);
    for (int attempt = 1;; ++attempt) {
      const auto report = kasm::run_health_checks(ctx.config, ctx.machine);
      if (report.healthy()) {
        plan::Outputs outputs;
        for (const auto& c : report.checks) {
          outputs["health." + c.name] = "ok";
          outputs["health." + c.name + ".latency_ms"] = fmt::format("{:.1f}", c.latency_ms);
        }
        return outputs;
      }
      if (ctx.cancelled.load()) throw Error(ExitCode::kInterrupted, "interrupted while waiting for a healthy agent");
      if (Clock::now() + kRetryInterval > deadline)
        throw Error(ExitCode::kHealth, fmt::format("agent not healthy after {} s ({} checks): {}",
                                                   ctx.config.health_timeout_seconds, attempt, report.failures()));
      log::info("{}: not healthy yet (attempt {}): {}", id(), attempt, report.failures());
      util::interruptible_sleep(kRetryInterval, &ctx.cancelled);
    }
  }
};

} // namespace

std::unique_ptr<plan::Step> make_verify_health() { return std::make_unique<VerifyHealth>(); }

} // namespace kb::steps

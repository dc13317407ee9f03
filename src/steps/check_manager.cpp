// check-manager: our own manager check, before anything is installed or started. It takes
// the place of install.sh's connection test (which -N skips; docs/kasm-installer.md §2:
// up to 10 tries, about 80 s, certificate not verified): a few tries over about 10 s, with
// the same TLS rules as verify-health, so a wrong manager address or port fails in seconds
// with a message that says which.

#include "kasm_bootstrap/kasm/health.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/util/interruptible_sleep.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <fmt/format.h>

#include <chrono>

namespace kb::steps {
namespace {

constexpr int kTries = 3;
constexpr auto kPause = std::chrono::seconds(2);

class CheckManager final : public plan::Step {
public:
  std::string_view id() const override { return id::kCheckManager; }
  std::vector<std::string_view> depends_on() const override { return {id::kPreflight}; }
  ExitCode failure_code() const override { return ExitCode::kHealth; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto& c = ctx.config;
    plan::Description d;
    d.summary =
        fmt::format("check that the manager answers before installing ({} tries, {} s apart)", kTries, kPause.count());
    d.actions.push_back({"http", kasm::manager_health_url(c.manager_address, c.manager_port),
                         std::string("expects \"ok\": true; ") +
                             (c.manager_tls_verify ? "TLS verified" : "TLS NOT verified (manager_tls_verify=false)")});
    return d;
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto& c = ctx.config;
    kasm::HealthCheck last;
    for (int attempt = 1; attempt <= kTries; ++attempt) {
      last = kasm::check_manager(c, ctx.machine);
      if (last.ok) return {{"manager", last.detail}, {"manager_latency_ms", fmt::format("{:.1f}", last.latency_ms)}};
      if (ctx.cancelled.load()) throw Error(ExitCode::kInterrupted, "interrupted while checking the manager");
      if (attempt < kTries) {
        log::info("{}: the manager did not answer yet (try {} of {}): {}", id(), attempt, kTries, last.detail);
        util::interruptible_sleep(kPause, &ctx.cancelled);
      }
    }
    throw Error(ExitCode::kHealth,
                fmt::format("the manager at {} did not answer after {} tries: {}; nothing was installed. Check "
                            "manager_address (the Zone's Upstream Auth Address) and manager_port",
                            kasm::manager_health_url(c.manager_address, c.manager_port), kTries, last.detail));
  }
};

} // namespace

std::unique_ptr<plan::Step> make_check_manager() { return std::make_unique<CheckManager>(); }

} // namespace kb::steps

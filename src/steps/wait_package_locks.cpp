// wait-package-locks: the installer runs apt, and apt fails when cloud-init or
// unattended-upgrades holds its lock at first boot. Wait for the locks the way dpkg
// takes them, with a deadline, instead of the old fixed 10 s sleep.

#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/package_locks.hpp"
#include "kasm_bootstrap/util/log.hpp"

namespace kb::steps {
namespace {

class WaitPackageLocks final : public plan::Step {
public:
  std::string_view id() const override { return id::kWaitPackageLocks; }
  std::vector<std::string_view> depends_on() const override { return {id::kPreflight}; }
  ExitCode failure_code() const override { return ExitCode::kPackageLock; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    plan::Description d;
    d.summary =
        "wait until apt/dpkg locks are free (deadline " + std::to_string(ctx.config.lock_timeout_seconds) + " s)";
    for (const char* file : sys::kPackageLockFiles) {
      std::string now;
      try {
        const auto holder = sys::lock_holder(ctx.machine.fs, file);
        now = holder ? "held now by " + holder->process +
                           (holder->pid > 0 ? " (pid " + std::to_string(holder->pid) + ")" : "")
                     : "free now";
      } catch (const std::exception& e) {
        now = std::string("cannot test: ") + e.what();
      }
      d.actions.push_back({"wait", file, now});
    }
    return d;
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    sys::LockWaitOptions options;
    options.timeout = std::chrono::seconds(ctx.config.lock_timeout_seconds);
    options.cancel = &ctx.cancelled;
    options.on_holder = [](const sys::LockHolder& h) { log::info("waiting for {}", h.describe()); };
    const auto r = sys::wait_for_package_locks(ctx.machine.fs, options);
    plan::Outputs out{{"lock_wait_ms", std::to_string(r.waited.count())}};
    if (r.first_holder) {
      out["lock_was_held_by"] = r.first_holder->describe();
      log::info("package locks free after {} ms", r.waited.count());
    }
    return out;
  }
};

} // namespace

std::unique_ptr<plan::Step> make_wait_package_locks() { return std::make_unique<WaitPackageLocks>(); }

} // namespace kb::steps

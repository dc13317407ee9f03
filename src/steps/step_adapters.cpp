// Adapters that let the fast path reuse existing steps unchanged: one answers with
// other dependencies, the other hands its step a configuration that asks for a
// generated certificate when none is configured.

#include "kasm_bootstrap/steps/steps.hpp"

namespace kb::steps {
namespace {

class Delegating : public plan::Step {
public:
  explicit Delegating(std::unique_ptr<plan::Step> inner) : inner_(std::move(inner)) {}
  std::string_view id() const override { return inner_->id(); }
  std::vector<std::string_view> depends_on() const override { return inner_->depends_on(); }
  ExitCode failure_code() const override { return inner_->failure_code(); }
  bool required(const config::Config& c) const override { return inner_->required(c); }
  plan::Description describe(const plan::StepContext& ctx) const override { return inner_->describe(ctx); }
  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override { return inner_->check(ctx); }
  plan::Outputs apply(const plan::StepContext& ctx) override { return inner_->apply(ctx); }

protected:
  std::unique_ptr<plan::Step> inner_;
};

class WithDependencies final : public Delegating {
public:
  WithDependencies(std::unique_ptr<plan::Step> inner, std::vector<std::string_view> after)
      : Delegating(std::move(inner)), after_(std::move(after)) {}
  std::vector<std::string_view> depends_on() const override { return after_; }

private:
  std::vector<std::string_view> after_;
};

class WithOwnCertificate final : public Delegating {
public:
  using Delegating::Delegating;
  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto c = adjusted(ctx.config);
    return inner_->describe({c, ctx.machine, ctx.facts, ctx.cancelled});
  }
  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    const auto c = adjusted(ctx.config);
    return inner_->check({c, ctx.machine, ctx.facts, ctx.cancelled});
  }
  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto c = adjusted(ctx.config);
    return inner_->apply({c, ctx.machine, ctx.facts, ctx.cancelled});
  }

private:
  static config::Config adjusted(const config::Config& c) {
    auto copy = c;
    if (copy.nginx_cert.empty() && copy.nginx_cert_path.empty()) copy.generate_self_signed = true;
    return copy;
  }
};

} // namespace

std::unique_ptr<plan::Step> with_dependencies(std::unique_ptr<plan::Step> step, std::vector<std::string_view> after) {
  return std::make_unique<WithDependencies>(std::move(step), std::move(after));
}

std::unique_ptr<plan::Step> with_own_certificate(std::unique_ptr<plan::Step> install_certificates) {
  return std::make_unique<WithOwnCertificate>(std::move(install_certificates));
}

} // namespace kb::steps

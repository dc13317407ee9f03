// configure-agent (fast path): the baked agent.app.config.yaml carries placeholder
// registration values; give it this instance's five keys. The token goes only into the
// file, never onto a command line or into a message.

#include "kasm_bootstrap/kasm/agent_config.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

namespace kb::steps {
namespace {

class ConfigureAgent final : public plan::Step {
public:
  explicit ConfigureAgent(std::string path) : path_(std::move(path)) {}
  std::string_view id() const override { return id::kConfigureAgent; }
  std::vector<std::string_view> depends_on() const override { return {id::kDetectAddress}; }
  ExitCode failure_code() const override { return ExitCode::kInstall; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto r = registration(ctx);
    plan::Description d;
    d.summary = "register this instance in the baked agent configuration (agent.server_id, agent.public_hostname, "
                "agent.provider, manager.hostnames, manager.token)";
    d.actions.push_back({"write", path_,
                         "server_id " + r.server_id + ", public_hostname " + r.public_hostname + ", provider '" +
                             r.provider + "', manager " + ctx.config.manager_address +
                             ", token ****; other keys kept; same mode and owner"});
    return d;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    try {
      const auto text = ctx.machine.fs.read_file(path_, 4u << 20);
      if (text && kasm::agent_config_matches(*text, registration(ctx), path_)) return outputs(ctx);
    } catch (const std::exception&) {
      // apply() reports the problem with the file.
    }
    return std::nullopt;
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto r = registration(ctx);
    if (r.public_hostname.empty()) throw Error(ExitCode::kAddress, "no agent address: detect-address produced none");
    kasm::rewrite_agent_config_file(ctx.machine.fs, path_, r);
    return outputs(ctx);
  }

private:
  kasm::AgentRegistration registration(const plan::StepContext& ctx) const {
    const auto& c = ctx.config;
    kasm::AgentRegistration r;
    r.server_id = c.server_id;
    r.public_hostname = ctx.facts.get(out::kAgentAddress).value_or(c.agent_address);
    r.provider = c.provider;
    r.manager_hostnames = {c.manager_address};
    r.manager_token = &c.manager_token;
    return r;
  }
  plan::Outputs outputs(const plan::StepContext& ctx) const {
    return {{"agent_config", path_}, {"server_id", ctx.config.server_id}};
  }

  std::string path_;
};

} // namespace

std::unique_ptr<plan::Step> make_configure_agent(const kasm::BakeManifest& bake) {
  return std::make_unique<ConfigureAgent>(bake.agent_config);
}

} // namespace kb::steps

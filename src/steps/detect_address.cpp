// The detect-address step: the agent address that install.sh gets as -p. The work is in
// net/address_chain.hpp, shared with the detect-address command.

#include "kasm_bootstrap/net/address_chain.hpp"
#include "kasm_bootstrap/net/cloud.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

#include <string>

namespace kb::steps {
namespace {

class DetectAddressStep final : public plan::Step {
public:
  std::string_view id() const override { return id::kDetectAddress; }
  std::vector<std::string_view> depends_on() const override { return {id::kPreflight}; }
  ExitCode failure_code() const override { return ExitCode::kAddress; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto& c = ctx.config;
    plan::Description d;
    if (!c.external_fqdn.empty()) {
      d.summary = "use external_fqdn " + c.external_fqdn + " as the agent address (no lookup)";
      return d;
    }
    if (!c.agent_address.empty()) {
      d.summary = "use the configured agent_address " + c.agent_address + " (no lookup)";
      return d;
    }
    // Reading DMI changes nothing and shows which metadata service a real run would ask.
    const auto cloud = net::detect_cloud(ctx.machine.fs);
    const auto sources = net::expand_address_sources(c.address_sources, cloud.cloud);
    std::string chain;
    for (const auto& s : sources)
      chain += (chain.empty() ? "" : ", ") + s;
    d.summary = "find the agent address: first of " + chain + " (cloud " + std::string(net::cloud_name(cloud.cloud)) +
                ": " + cloud.evidence + "; metadata budget " + std::to_string(c.address_timeout_seconds) + " s)";
    for (const auto& s : sources) {
      if (s == "aws-imds" || s == "aws-imds-public") {
        d.actions.push_back({"http", "PUT " + c.imds_endpoint + "/latest/api/token", "IMDSv2 session token"});
        d.actions.push_back(
            {"http", "GET " + c.imds_endpoint + "/latest/meta-data/" + (s == "aws-imds" ? "local-ipv4" : "public-ipv4"),
             s});
      } else if (net::is_metadata_source(s)) {
        d.actions.push_back({"http", "GET " + c.imds_endpoint + " (" + s + " metadata service)", s});
      } else if (s == "route") {
        d.actions.push_back({"check", "source address of the default route", s});
      } else if (s == "first-global") {
        d.actions.push_back({"check", "first usable address of an interface that is up", s});
      } else {
        d.actions.push_back({"check", "address of interface " + s.substr(s.find(':') + 1), s});
      }
    }
    return d;
  }

  // A configured name or address is already the answer: nothing to look up.
  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    if (ctx.config.external_fqdn.empty() && ctx.config.agent_address.empty()) return std::nullopt;
    const auto given = net::detect_agent_address(ctx.config, ctx.machine); // no lookup in this case
    return plan::Outputs{{out::kAgentAddress, given.address}, {out::kAddressSource, given.source}};
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto found = net::detect_agent_address(ctx.config, ctx.machine, &ctx.cancelled);
    return {{out::kAgentAddress, found.address}, {out::kAddressSource, found.source}};
  }
};

} // namespace

std::unique_ptr<plan::Step> make_detect_address() { return std::make_unique<DetectAddressStep>(); }

} // namespace kb::steps

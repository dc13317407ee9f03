// block-metadata: once Docker runs, drop container traffic to the cloud metadata service
// (EC2 user-data there holds the manager token) with one rule at the head of Docker's
// DOCKER-USER chain. Required: without it every session container can read the token.
// block_container_metadata=false turns it off; kasm-bootstrap-metadata-firewall.service
// re-applies it whenever Docker (re)starts, since a reboot leaves the chain empty.

#include "kasm_bootstrap/net/metadata_firewall.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/util/log.hpp"

namespace kb::steps {
namespace {

constexpr const char* kTurnOffHint =
    " (the manager token in EC2 user-data stays readable from containers until this works; to run without this "
    "protection, set block_container_metadata to false)";

plan::Outputs firewall_outputs(const net::FirewallStatus& status) {
  return {{"metadata_block.ip", status.ipv4.blocked() ? "present" : "absent"},
          {"metadata_block.ip6", status.ipv6.chain_exists ? (status.ipv6.blocked() ? "present" : "absent")
                                                          : "skipped (no ip6 DOCKER-USER chain)"},
          {"metadata_block", status.summary()}};
}

class BlockMetadata final : public plan::Step {
public:
  std::string_view id() const override { return id::kBlockMetadata; }
  std::vector<std::string_view> depends_on() const override { return {id::kStartServices}; }
  ExitCode failure_code() const override { return ExitCode::kDocker; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    plan::Description d;
    if (!ctx.config.block_container_metadata) {
      d.summary = "leave container access to the metadata service alone (block_container_metadata is false)";
      return d;
    }
    d.summary = "drop container traffic to the metadata service in Docker's DOCKER-USER chain (nftables, netlink)";
    d.actions.push_back({"write", "nftables ip filter DOCKER-USER",
                         "insert at the head: -d " + std::string(net::kMetadataAddressV4) + "/32 -j DROP, comment \"" +
                             std::string(net::kMetadataRuleComment) + "\""});
    d.actions.push_back({"write", "nftables ip6 filter DOCKER-USER",
                         "insert at the head: -d " + std::string(net::kMetadataAddressV6) +
                             "/128 -j DROP (skipped when Docker has no ip6 chain)"});
    return d;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    if (!ctx.config.block_container_metadata) return plan::Outputs{{"metadata_block", "disabled"}};
    try {
      const auto status = net::metadata_block_status();
      if (status.protected_everywhere()) return firewall_outputs(status);
    } catch (const std::exception&) {
      // apply() reports it with the fix.
    }
    return std::nullopt;
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    if (!ctx.config.block_container_metadata) return {{"metadata_block", "disabled"}};
    try {
      const auto status = net::apply_metadata_block();
      log::info("{}: {}", id(), status.summary());
      return firewall_outputs(status);
    } catch (const Error& e) {
      throw Error(e.code(), std::string(e.what()) + kTurnOffHint);
    }
  }
};

} // namespace

std::unique_ptr<plan::Step> make_block_metadata() { return std::make_unique<BlockMetadata>(); }

} // namespace kb::steps

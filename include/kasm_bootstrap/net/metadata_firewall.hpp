#pragma once
// Keeps Docker's containers away from the cloud metadata service (169.254.169.254 and,
// on IPv6, fd00:ec2::254): EC2 user-data, readable there, holds the manager token. One
// DROP rule at the head of Docker's DOCKER-USER chain in nftables table `filter`, family
// ip (and ip6 when Docker made that chain), written over netlink exactly as iptables-nft
// writes `-d ADDR -m comment --comment "..." -j DROP`, so `iptables -S DOCKER-USER`
// shows it. Only forwarded (container) traffic passes DOCKER-USER; the host's own
// traffic is untouched. Facts and sources: docs/platform.md "Metadata service and
// Docker's DOCKER-USER chain".
//
// Works in the network namespace of the calling thread. Needs CAP_NET_ADMIN (every
// nfnetlink request does, reads included).

#include <string>
#include <string_view>

namespace kb::net {

// The rule's comment (NFTA_RULE_USERDATA), by which we find our rule again.
inline constexpr std::string_view kMetadataRuleComment = "kasm-bootstrap: no metadata service for containers";
inline constexpr std::string_view kMetadataAddressV4 = "169.254.169.254";
inline constexpr std::string_view kMetadataAddressV6 = "fd00:ec2::254";

struct FamilyFirewall {
  std::string family;        // "ip" | "ip6"
  bool chain_exists = false; // table filter, chain DOCKER-USER
  int our_rules = 0;         // rules carrying our comment
  bool added = false;        // apply_metadata_block() inserted the rule
  int removed_duplicates = 0;
  std::string detail; // one line for people: what is there and what was done
  bool blocked() const { return chain_exists && our_rules >= 1; }
};

struct FirewallStatus {
  FamilyFirewall ipv4;
  FamilyFirewall ipv6;
  // IPv4 blocked, and IPv6 blocked wherever Docker has an ip6 DOCKER-USER chain.
  bool protected_everywhere() const { return ipv4.blocked() && (!ipv6.chain_exists || ipv6.blocked()); }
  std::string summary() const; // "ip: ...; ip6: ..."
};

// Reads the rules; changes nothing. A missing chain is a result (chain_exists false), a
// netlink failure (no CAP_NET_ADMIN, no nf_tables) a kb::Error naming the operation.
FirewallStatus metadata_block_status();

// Inserts the rule at the head of each DOCKER-USER chain that lacks it (idempotent: a
// chain that has it is left alone; duplicates of ours, from two applies racing, are
// removed down to one). Throws kb::Error (kDocker) when the ip chain does not exist; an
// absent ip6 chain (Docker's ip6tables off) is skipped and said so in ipv6.detail.
FirewallStatus apply_metadata_block();

// The message for a missing ip chain (shared by apply, the step and health).
std::string missing_docker_user_chain_message();

} // namespace kb::net

// The metadata-service block (net/metadata_firewall.hpp) against the real kernel, in
// network namespaces the tests create. The DOCKER-USER chain is made the way Docker makes
// it, with iptables-nft (what Docker calls on Debian and Ubuntu), and iptables-nft reads
// our rule back: that proves the rule we write over netlink is one iptables-nft parses.

#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/net/metadata_firewall.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <exception>
#include <optional>
#include <thread>

using namespace kb;
using namespace kb::test;

namespace {

const std::string kOurRuleV4 =
    "-A DOCKER-USER -d 169.254.169.254/32 -m comment --comment \"kasm-bootstrap: no metadata service for containers\" "
    "-j DROP";
const std::string kOurRuleV6 =
    "-A DOCKER-USER -d fd00:ec2::254/128 -m comment --comment \"kasm-bootstrap: no metadata service for containers\" "
    "-j DROP";

#define KB_REQUIRE_FIREWALL_NAMESPACES()                                                                               \
  if (!network_namespaces_available())                                                                                 \
    KB_SKIP("network namespaces cannot be created here (needs root and `ip netns`)");                                  \
  if (::access("/usr/sbin/iptables-nft", X_OK) != 0 || ::access("/usr/sbin/ip6tables-nft", X_OK) != 0)                 \
  KB_SKIP("iptables-nft is not installed (Debian package iptables; scripts/install-deps.sh --test)")

// A netlink socket belongs to the network namespace of the thread that opens it, so the
// call runs on a thread that entered the namespace; the test process stays where it is.
template <typename Fn> auto in_namespace(const NetNamespace& ns, Fn fn) -> decltype(fn()) {
  const auto path = "/run/netns/" + ns.name();
  const sys::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw std::runtime_error("cannot open " + path);
  std::optional<decltype(fn())> result;
  std::exception_ptr error;
  std::thread worker([&] {
    try {
      if (::setns(fd.get(), CLONE_NEWNET) != 0) throw std::runtime_error("setns " + path + " failed");
      result.emplace(fn());
    } catch (...) {
      error = std::current_exception();
    }
  });
  worker.join();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

std::vector<std::string> rules_listed(const NetNamespace& ns, const std::string& tool) {
  const auto r = run_process({"ip", "netns", "exec", ns.name(), tool, "-S", "DOCKER-USER"});
  INFO(tool << " -S: " << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty()); // no "unsupported expression" warning: iptables-nft understood every rule
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// What Docker does at start: the chain, ending in RETURN (older Docker versions).
void make_docker_user_chain(const NetNamespace& ns, const std::string& tool) {
  ns.exec({tool, "-N", "DOCKER-USER"});
  ns.exec({tool, "-A", "DOCKER-USER", "-j", "RETURN"});
}

} // namespace

TEST_CASE("metadata firewall: the DROP rule goes first in DOCKER-USER, as iptables-nft writes it, once",
          "[firewall][netns]") {
  KB_REQUIRE_FIREWALL_NAMESPACES();
  NetNamespace ns("kbfw");
  make_docker_user_chain(ns, "iptables-nft");

  const auto before = in_namespace(ns, [] { return net::metadata_block_status(); });
  CHECK(before.ipv4.chain_exists);
  CHECK(before.ipv4.our_rules == 0);
  CHECK_FALSE(before.protected_everywhere());
  CHECK_FALSE(before.ipv6.chain_exists);

  const auto applied = in_namespace(ns, [] { return net::apply_metadata_block(); });
  INFO(applied.summary());
  CHECK(applied.ipv4.added);
  CHECK(applied.ipv4.our_rules == 1);
  CHECK(applied.protected_everywhere());
  // Docker without ip6tables has no ip6 chain: skipped, and said so, not an error.
  CHECK_FALSE(applied.ipv6.chain_exists);
  CHECK(applied.ipv6.detail.find("IPv6 skipped") != std::string::npos);
  CHECK(applied.ipv4.detail.find("rule 1 of 2") != std::string::npos);

  // Inserted at the head, before Docker's RETURN, and iptables-nft prints it back.
  const std::vector<std::string> expected{"-N DOCKER-USER", kOurRuleV4, "-A DOCKER-USER -j RETURN"};
  CHECK(rules_listed(ns, "iptables-nft") == expected);

  SECTION("applying again adds nothing") {
    const auto again = in_namespace(ns, [] { return net::apply_metadata_block(); });
    CHECK_FALSE(again.ipv4.added);
    CHECK(again.ipv4.our_rules == 1);
    CHECK(rules_listed(ns, "iptables-nft") == expected);
    const auto status = in_namespace(ns, [] { return net::metadata_block_status(); });
    CHECK(status.protected_everywhere());
    CHECK(status.ipv4.our_rules == 1);
  }

  SECTION("the subcommand for the systemd unit applies it and exits 0, and is idempotent too") {
    const auto r = run_process({"ip", "netns", "exec", ns.name(), binary_path(), "protect-metadata", "-o", "json"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const auto doc = nlohmann::json::parse(r.out);
    CHECK(doc["result"] == "protected");
    CHECK(doc["ip"]["added"] == false);
    CHECK(doc["ip"]["rules"] == 1);
    CHECK(doc["ip6"]["chain_exists"] == false);
    CHECK(rules_listed(ns, "iptables-nft") == expected);
  }

  SECTION("duplicates (two applies racing) are removed down to one") {
    // iptables-nft's own copy of the rule: found by its comment, like ours.
    ns.exec({"iptables-nft", "-I", "DOCKER-USER", "-d", "169.254.169.254/32", "-m", "comment", "--comment",
             std::string(net::kMetadataRuleComment), "-j", "DROP"});
    REQUIRE(in_namespace(ns, [] { return net::metadata_block_status(); }).ipv4.our_rules == 2);
    const auto fixed = in_namespace(ns, [] { return net::apply_metadata_block(); });
    CHECK(fixed.ipv4.our_rules == 1);
    CHECK(fixed.ipv4.removed_duplicates == 1);
    CHECK(rules_listed(ns, "iptables-nft") == expected);
  }
}

TEST_CASE("metadata firewall: without Docker's chain, a clear error and no crash", "[firewall][netns]") {
  KB_REQUIRE_FIREWALL_NAMESPACES();
  NetNamespace ns("kbfw");
  const auto check_refused = [&] {
    try {
      in_namespace(ns, [] { return net::apply_metadata_block(); });
      FAIL("apply_metadata_block() succeeded without a DOCKER-USER chain");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::kDocker);
      CHECK(std::string(e.what()) == net::missing_docker_user_chain_message());
    }
    const auto status = in_namespace(ns, [] { return net::metadata_block_status(); });
    CHECK_FALSE(status.ipv4.chain_exists);
    CHECK_FALSE(status.protected_everywhere());
    const auto r = run_process({"ip", "netns", "exec", ns.name(), binary_path(), "protect-metadata"});
    CHECK(r.exit_code == static_cast<int>(ExitCode::kDocker));
    CHECK(r.err.find("Docker's DOCKER-USER chain is not in nftables table ip filter") != std::string::npos);
  };
  SECTION("no nftables table at all") { check_refused(); }
  SECTION("table filter without DOCKER-USER (iptables used, Docker not)") {
    ns.exec({"iptables-nft", "-L", "FORWARD", "-n"});
    check_refused();
  }
  SECTION("a dry run only reads") {
    const auto r = run_process({"ip", "netns", "exec", ns.name(), binary_path(), "protect-metadata", "--dry-run"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("nothing was changed") != std::string::npos);
  }
}

TEST_CASE("metadata firewall: with Docker's ip6tables, fd00:ec2::254 is dropped in ip6 DOCKER-USER too",
          "[firewall][netns]") {
  KB_REQUIRE_FIREWALL_NAMESPACES();
  NetNamespace ns("kbfw");
  make_docker_user_chain(ns, "iptables-nft");
  make_docker_user_chain(ns, "ip6tables-nft");
  const auto applied = in_namespace(ns, [] { return net::apply_metadata_block(); });
  INFO(applied.summary());
  CHECK(applied.ipv4.added);
  CHECK(applied.ipv6.added);
  CHECK(applied.protected_everywhere());
  CHECK(rules_listed(ns, "ip6tables-nft") ==
        std::vector<std::string>{"-N DOCKER-USER", kOurRuleV6, "-A DOCKER-USER -j RETURN"});
  CHECK(rules_listed(ns, "iptables-nft") ==
        std::vector<std::string>{"-N DOCKER-USER", kOurRuleV4, "-A DOCKER-USER -j RETURN"});
  const auto again = in_namespace(ns, [] { return net::apply_metadata_block(); });
  CHECK_FALSE(again.ipv6.added);
  CHECK(again.ipv6.our_rules == 1);

  SECTION("a missing ip6 rule is reported, not hidden") {
    ns.exec({"ip6tables-nft", "-D", "DOCKER-USER", "1"});
    const auto status = in_namespace(ns, [] { return net::metadata_block_status(); });
    CHECK(status.ipv4.blocked());
    CHECK_FALSE(status.ipv6.blocked());
    CHECK_FALSE(status.protected_everywhere());
  }
}

TEST_CASE("metadata firewall: without CAP_NET_ADMIN, an error that names the operation and the fix",
          "[firewall][netns]") {
  KB_REQUIRE_FIREWALL_NAMESPACES();
  // A user namespace of its own: "root" there, but no capability over the network
  // namespace it runs in, so nfnetlink refuses even the read (docs/platform.md).
  NetNamespace ns("kbfw");
  const TempDir root;
  const auto r = run_process({"ip", "netns", "exec", ns.name(), "unshare", "-U", "-r", binary_path(),
                              "protect-metadata", "--dry-run", "--root", root.path().string()});
  INFO(r.out << r.err);
  CHECK(r.exit_code == static_cast<int>(ExitCode::kDocker));
  CHECK(r.err.find("looking up chain DOCKER-USER in nftables table ip filter: Operation not permitted") !=
        std::string::npos);
  CHECK(r.err.find("CAP_NET_ADMIN") != std::string::npos);
}

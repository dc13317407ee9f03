// Which values may be an agent address (net/agent_ip.hpp), and which cloud DMI names
// (net/cloud.hpp), over real files under a temporary root.

#include "address_fixtures.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/net/agent_ip.hpp"
#include "kasm_bootstrap/net/cloud.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include <arpa/inet.h>

using namespace kb;
using namespace kb::test;

TEST_CASE("address: private, public and global IPv6 addresses are usable, in canonical form", "[address]") {
  CHECK(net::check_agent_address("10.0.3.7").address == "10.0.3.7");
  CHECK(net::check_agent_address("  172.31.7.19\n").address == "172.31.7.19");
  CHECK(net::check_agent_address("203.0.113.40").usable());
  const auto v6 = net::check_agent_address("2600:1F18:0000:0000:0000:0000:0000:0042");
  CHECK(v6.usable());
  CHECK(v6.address == "2600:1f18::42");
  CHECK(net::check_agent_address("fd00:ec2::12").usable()); // ULA: reachable inside a VPC
  // An IPv4-mapped IPv6 address is judged (and written) as the IPv4 address it carries.
  CHECK(net::check_agent_address("::ffff:10.1.2.3").address == "10.1.2.3");
  CHECK_FALSE(net::check_agent_address("::ffff:127.0.0.1").usable());
}

TEST_CASE("address: loopback, link-local, unspecified, multicast and broadcast are refused with the reason",
          "[address]") {
  const std::pair<const char*, const char*> cases[] = {
      {"127.0.0.1", "loopback"},   {"127.8.9.10", "loopback"},
      {"::1", "loopback"},         {"169.254.169.254", "link-local"},
      {"fe80::1", "link-local"},   {"0.0.0.0", "unspecified"},
      {"::", "unspecified"},       {"224.0.0.251", "multicast"},
      {"ff02::1", "multicast"},    {"255.255.255.255", "broadcast"},
      {"0.1.2.3", "this network"},
  };
  for (const auto& [value, reason] : cases) {
    const auto check = net::check_agent_address(value);
    INFO(value << " -> " << check.problem);
    CHECK_FALSE(check.usable());
    CHECK(check.problem.find(reason) != std::string::npos);
  }
}

TEST_CASE("address: malformed values are refused and quoted safely", "[address]") {
  for (const char* value : {"", "   ", "10.0.0", "10.0.0.256", "not-an-ip", "10.0.0.1 10.0.0.2", "10.0.0.1\n10.0.0.2",
                            "<html><body>Captive portal</body></html>", "1.2.3.4:80", "[::1]"}) {
    const auto check = net::check_agent_address(value);
    INFO("'" << value << "' -> " << check.problem);
    CHECK_FALSE(check.usable());
    CHECK_FALSE(check.problem.empty());
  }
  const std::string binary("\x00\x01\xff\x1b[31mred", 10);
  const auto check = net::check_agent_address(binary);
  CHECK_FALSE(check.usable());
  CHECK(check.problem.find('\x1b') == std::string::npos); // no terminal escapes reach a log
  CHECK(util::quote_for_message(std::string(500, 'x')) == std::string(60, 'x') + "... (500 bytes)");
}

TEST_CASE("address: socket addresses are checked by the same rules", "[address]") {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  ::inet_pton(AF_INET, "10.9.8.7", &v4.sin_addr);
  CHECK(net::check_agent_address(reinterpret_cast<const sockaddr*>(&v4)).address == "10.9.8.7");
  ::inet_pton(AF_INET, "169.254.3.4", &v4.sin_addr);
  CHECK_FALSE(net::check_agent_address(reinterpret_cast<const sockaddr*>(&v4)).usable());
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  ::inet_pton(AF_INET6, "fe80::abcd", &v6.sin6_addr);
  CHECK_FALSE(net::check_agent_address(reinterpret_cast<const sockaddr*>(&v6)).usable());
  sockaddr unix_family{};
  unix_family.sa_family = AF_UNIX;
  CHECK_FALSE(net::check_agent_address(&unix_family).usable());
}

TEST_CASE("cloud: DMI strings under the root name the cloud", "[address][cloud]") {
  struct Case {
    const char* file;
    const char* value;
    net::Cloud cloud;
  };
  const Case cases[] = {
      {"sys/class/dmi/id/sys_vendor", "Amazon EC2\n", net::Cloud::kAws},
      {"sys/class/dmi/id/bios_version", "4.11.amazon\n", net::Cloud::kAws}, // Xen-era instance
      {"sys/hypervisor/uuid", "ec2e1916-9099-7caf-fd21-012345abcdef\n", net::Cloud::kAws},
      {"sys/class/dmi/id/sys_vendor", "Google\n", net::Cloud::kGcp},
      {"sys/class/dmi/id/product_name", "Google Compute Engine\n", net::Cloud::kGcp},
      {"sys/class/dmi/id/sys_vendor", "Microsoft Corporation\n", net::Cloud::kAzure},
      {"sys/class/dmi/id/chassis_asset_tag", "7783-7084-3265-9085-8269-3286-77\n", net::Cloud::kAzure},
      {"sys/class/dmi/id/chassis_asset_tag", "OracleCloud.com\n", net::Cloud::kOci},
      {"sys/class/dmi/id/sys_vendor", "DigitalOcean\n", net::Cloud::kDigitalOcean},
      {"sys/class/dmi/id/sys_vendor", "QEMU\n", net::Cloud::kUnknown},
      {"sys/class/dmi/id/sys_vendor", "VMware, Inc.\n", net::Cloud::kUnknown},
  };
  for (const auto& c : cases) {
    TempDir root;
    root.write(c.file, c.value);
    const auto detection = net::detect_cloud(sys::RootFs(root.path()));
    INFO(c.file << " = " << c.value << " -> " << detection.evidence);
    CHECK(detection.cloud == c.cloud);
    CHECK_FALSE(detection.evidence.empty());
  }
}

TEST_CASE("cloud: no DMI at all is an unknown cloud, said plainly", "[address][cloud]") {
  TempDir root;
  const auto detection = net::detect_cloud(sys::RootFs(root.path()));
  CHECK(detection.cloud == net::Cloud::kUnknown);
  CHECK(detection.evidence.find("no DMI vendor") != std::string::npos);
}

TEST_CASE("cloud: the metadata source of each cloud is the one address_sources names", "[address][cloud]") {
  CHECK(net::cloud_metadata_source(net::Cloud::kAws) == "aws-imds");
  CHECK(net::cloud_metadata_source(net::Cloud::kGcp) == "gcp");
  CHECK(net::cloud_metadata_source(net::Cloud::kDigitalOcean) == "digitalocean");
  CHECK(net::cloud_metadata_source(net::Cloud::kUnknown).empty());
}

// Bodies that come back from metadata services (AWS IMDS, GCP, Azure, Oracle Cloud,
// DigitalOcean, OpenStack) on their way to an agent address. The input is one response
// body; every parser a body can reach gets it: the plain-text address answer, the public
// IPv4 items (GCP external IP, Azure publicIpAddress, OpenStack public-ipv4), Azure's
// load-balancer JSON, OCI's VNIC JSON, the IMDS multi-line lists, the IMDSv2 token and
// the 'mac' item.
// A body comes from the network, so whatever ends up in a message must be printable
// (quoted, truncated), and an accepted address must be canonical.

#include "fuzz_support.hpp"

#include "kasm_bootstrap/net/agent_ip.hpp"
#include "kasm_bootstrap/net/aws_imds.hpp"
#include "kasm_bootstrap/net/metadata_services.hpp"
#include "kasm_bootstrap/net/source_error.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include <string>

namespace {

using kb::net::AddressCheck;

bool address_chars(const std::string& s) {
  for (const char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '.' && c != ':') return false;
  return true;
}

void check_address(std::string_view body) {
  const AddressCheck check = kb::net::check_agent_address(body);
  FUZZ_CHECK(check.usable() || !check.problem.empty(), "unusable without a reason");
  FUZZ_CHECK(kb::fuzz::printable_ascii(check.problem), check.problem);
  // Messages quote at most 60 characters of the body, plus the fixed explanation.
  FUZZ_CHECK(check.problem.size() < 200, check.problem);
  if (check.address.empty()) {
    FUZZ_CHECK(!check.usable(), "usable without an address");
    return;
  }
  FUZZ_CHECK(address_chars(check.address), check.address);
  // The canonical form is a fixed point with the same verdict.
  const AddressCheck again = kb::net::check_agent_address(check.address);
  FUZZ_CHECK(again.address == check.address, check.address + " -> " + again.address);
  FUZZ_CHECK(again.problem == check.problem, again.problem + " vs " + check.problem);
}

void check_source_error(const kb::net::SourceError& e) {
  const std::string_view what = e.what();
  FUZZ_CHECK(!what.empty(), "empty SourceError");
  FUZZ_CHECK(kb::fuzz::printable_ascii(what), what);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kb::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string body(kb::fuzz::as_text(data, size));

  // GCP, Azure (format=text), DigitalOcean, IMDS local-ipv4: the body is the address.
  check_address(body);

  const std::string quoted = kb::util::quote_for_message(body);
  FUZZ_CHECK(kb::fuzz::printable_ascii(quoted), quoted);
  FUZZ_CHECK(quoted.size() <= 60 + std::string("... (4294967296 bytes)").size(), quoted);
  FUZZ_CHECK(body.size() > 60 || quoted.size() == body.size(), quoted);

  // IMDS ipv6 / ipv6s: one address per line, the first is the primary.
  const std::string first = kb::net::imds_first_line(body);
  FUZZ_CHECK(first.find('\n') == std::string::npos, first);
  FUZZ_CHECK(body.compare(0, first.size(), first) == 0, "first line is not a prefix");
  check_address(first);

  // OCI /opc/v2/vnics/.
  try {
    const std::string ip = kb::net::oci_private_ip(body, "GET http://169.254.169.254/opc/v2/vnics/");
    check_address(ip);
  } catch (const kb::net::SourceError& e) {
    check_source_error(e);
  }

  // The public IPv4 items and Azure's /metadata/loadbalancer: IPv4 only, canonical.
  for (const auto& parse :
       {+[](const std::string& b) { return kb::net::metadata_ipv4(b, "GET public-ipv4"); },
        +[](const std::string& b) { return kb::net::azure_lb_public_ip(b, "GET /metadata/loadbalancer"); }}) {
    try {
      const std::string ip = parse(body);
      FUZZ_CHECK(ip.find(':') == std::string::npos, "an IPv6 address from an IPv4-only parser: " + ip);
      check_address(ip);
    } catch (const kb::net::SourceError& e) {
      check_source_error(e);
    }
  }

  // IMDSv2 token: it goes into a request header, so it must not be able to add one.
  if (kb::net::plausible_imds_token(body)) {
    FUZZ_CHECK(kb::fuzz::printable_ascii(body) && body.find(' ') == std::string::npos, "token with whitespace");
    FUZZ_CHECK(!body.empty() && body.size() <= 512, "token length");
  }

  // IMDS 'mac': it becomes part of the next request's path.
  try {
    const std::string mac = kb::net::imds_mac(body);
    FUZZ_CHECK(mac.size() == 17, mac);
    FUZZ_CHECK(mac.find_first_of("/?#%. \r\n") == std::string::npos, mac);
  } catch (const kb::net::SourceError& e) {
    check_source_error(e);
  }
  return 0;
}

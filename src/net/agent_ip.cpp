#include "kasm_bootstrap/net/agent_ip.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace kb::net {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

AddressCheck check_v4(const in_addr& a) {
  char text[INET_ADDRSTRLEN] = {0};
  ::inet_ntop(AF_INET, &a, text, sizeof text);
  AddressCheck r{text, {}};
  const std::uint32_t h = ntohl(a.s_addr);
  if (h == 0)
    r.problem = "the unspecified address";
  else if ((h >> 24) == 127)
    r.problem = "a loopback address";
  else if ((h >> 16) == 0xA9FE)
    r.problem = "a link-local address";
  else if ((h >> 28) == 0xE)
    r.problem = "a multicast address";
  else if (h == 0xFFFFFFFF)
    r.problem = "the broadcast address";
  else if ((h >> 24) == 0)
    r.problem = "in 0.0.0.0/8 (\"this network\"), not a host address";
  if (!r.problem.empty()) r.problem = std::string(text) + " is " + r.problem;
  return r;
}

AddressCheck check_v6(const in6_addr& a) {
  char text[INET6_ADDRSTRLEN] = {0};
  ::inet_ntop(AF_INET6, &a, text, sizeof text);
  AddressCheck r{text, {}};
  const auto* b = a.s6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    in_addr v4{};
    std::memcpy(&v4, b + 12, 4);
    return check_v4(v4); // a mapped address is its IPv4 address, in its usual spelling
  }
  if (IN6_IS_ADDR_UNSPECIFIED(&a))
    r.problem = "the unspecified address";
  else if (IN6_IS_ADDR_LOOPBACK(&a))
    r.problem = "the loopback address";
  else if (IN6_IS_ADDR_LINKLOCAL(&a))
    r.problem = "a link-local address";
  else if (IN6_IS_ADDR_MULTICAST(&a))
    r.problem = "a multicast address";
  if (!r.problem.empty()) r.problem = std::string(text) + " is " + r.problem;
  return r;
}

} // namespace

AddressCheck check_agent_address(std::string_view text) {
  const auto t = trim(text);
  if (t.empty()) return {{}, "the value is empty"};
  // inet_pton needs a terminated string and accepts nothing longer than an IPv6 literal.
  if (t.size() > INET6_ADDRSTRLEN) return {{}, "'" + util::quote_for_message(t) + "' is not an IP address"};
  const std::string s(t);
  in_addr v4{};
  if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) return check_v4(v4);
  in6_addr v6{};
  if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) return check_v6(v6);
  return {{}, "'" + util::quote_for_message(t) + "' is not an IP address"};
}

AddressCheck check_agent_address(const sockaddr* address) {
  if (!address) return {{}, "no address"};
  if (address->sa_family == AF_INET) return check_v4(reinterpret_cast<const sockaddr_in*>(address)->sin_addr);
  if (address->sa_family == AF_INET6) return check_v6(reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr);
  return {{}, "not an IPv4 or IPv6 address (family " + std::to_string(address->sa_family) + ")"};
}

} // namespace kb::net

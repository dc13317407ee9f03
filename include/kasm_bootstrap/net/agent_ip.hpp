#pragma once
// Which IP addresses can be an agent's address. The manager and the users' browsers must
// reach the agent there, so loopback, link-local, unspecified, multicast and broadcast
// values are refused wherever they come from (metadata service, route, interface).

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <string_view>

namespace kb::net {

struct AddressCheck {
  std::string address; // canonical text form (inet_ntop) when usable
  std::string problem; // why it is not usable; empty when it is

  bool usable() const { return problem.empty(); }
};

// Parses `text` (surrounding whitespace ignored) as an IPv4 or IPv6 address.
AddressCheck check_agent_address(std::string_view text);
// The same for a socket address (AF_INET or AF_INET6), e.g. from getsockname/getifaddrs.
AddressCheck check_agent_address(const sockaddr* address);

} // namespace kb::net

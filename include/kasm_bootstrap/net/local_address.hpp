#pragma once
// Address sources that need no metadata service: the kernel's own view of this machine's
// network. They read the network namespace the process runs in (not the root dir), and
// answer in microseconds. Each throws SourceError with the reason when it has no usable
// address (address rules: agent_ip.hpp).

#include <string>
#include <string_view>

namespace kb::net {

// Source address the kernel would use for the default route: connect() a UDP socket to a
// public address and read getsockname(). A UDP connect sends no packet. IPv4 first, then
// IPv6.
std::string route_source_address();

// First usable address of the named interface, IPv4 before IPv6.
std::string interface_address(std::string_view name);

// First usable address of any interface that is up, IPv4 before IPv6, skipping loopback
// and the bridges and veths of container runtimes (docker0 on a pre-baked image).
std::string first_global_address();

} // namespace kb::net

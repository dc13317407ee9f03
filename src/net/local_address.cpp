#include "kasm_bootstrap/net/local_address.hpp"

#include "kasm_bootstrap/net/agent_ip.hpp"
#include "kasm_bootstrap/net/source_error.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace kb::net {
namespace {

struct IfaddrsDeleter {
  void operator()(ifaddrs* list) const { ::freeifaddrs(list); }
};
using IfaddrsList = std::unique_ptr<ifaddrs, IfaddrsDeleter>;

IfaddrsList interfaces() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) throw SourceError(std::string("cannot list interfaces: ") + util::errno_text(errno));
  return IfaddrsList(list);
}

// The same public resolvers the bash script's `ip route get 1.1.1.1` asks about.
std::string route_source(int family, std::string& problem) {
  sockaddr_storage target{};
  socklen_t length = 0;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&target);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(53);
    ::inet_pton(AF_INET, "1.1.1.1", &sin->sin_addr);
    length = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&target);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(53);
    ::inet_pton(AF_INET6, "2606:4700:4700::1111", &sin6->sin6_addr);
    length = sizeof(sockaddr_in6);
  }
  const char* name = family == AF_INET ? "IPv4" : "IPv6";
  sys::UniqueFd fd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    problem = std::string(name) + ": no socket (" + util::errno_text(errno) + ")";
    return {};
  }
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&target), length) != 0) {
    const int err = errno;
    problem = std::string(name) + ": " +
              (err == ENETUNREACH ? std::string("no default route") : std::string(util::errno_text(err)));
    return {};
  }
  sockaddr_storage local{};
  socklen_t local_length = sizeof local;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &local_length) != 0) {
    problem = std::string(name) + ": getsockname failed (" + util::errno_text(errno) + ")";
    return {};
  }
  const auto check = check_agent_address(reinterpret_cast<const sockaddr*>(&local));
  if (!check.usable()) {
    problem = std::string(name) + ": the default route's source " + check.problem;
    return {};
  }
  return check.address;
}

// Interfaces that container runtimes and hypervisors create on the host; their
// addresses are private to the host and no manager can reach an agent there.
bool is_virtual_bridge(std::string_view name) {
  for (std::string_view prefix : {"docker", "br-", "veth", "virbr", "cni", "flannel", "cali", "kube-", "podman"})
    if (name.rfind(prefix, 0) == 0) return true;
  return false;
}

bool is_ip(const ifaddrs* i) {
  return i->ifa_addr && (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items)
    out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

} // namespace

std::string route_source_address() {
  std::string v4_problem, v6_problem;
  if (auto a = route_source(AF_INET, v4_problem); !a.empty()) return a;
  if (auto a = route_source(AF_INET6, v6_problem); !a.empty()) return a;
  throw SourceError("no usable default-route source address (" + v4_problem + "; " + v6_problem + ")");
}

std::string interface_address(std::string_view name) {
  const auto list = interfaces();
  bool exists = false;
  bool up = false;
  std::vector<std::string> names, rejected;
  for (int family : {AF_INET, AF_INET6}) {
    for (const ifaddrs* i = list.get(); i; i = i->ifa_next) {
      if (family == AF_INET && std::find(names.begin(), names.end(), i->ifa_name) == names.end())
        names.emplace_back(i->ifa_name);
      if (name != i->ifa_name) continue;
      exists = true;
      up = up || (i->ifa_flags & IFF_UP);
      if (!(i->ifa_flags & IFF_UP) || !is_ip(i) || i->ifa_addr->sa_family != family) continue;
      const auto check = check_agent_address(i->ifa_addr);
      if (check.usable()) return check.address;
      rejected.push_back(check.problem);
    }
  }
  if (!exists) throw SourceError("no interface named '" + std::string(name) + "' (interfaces: " + join(names) + ")");
  if (!up) throw SourceError("interface " + std::string(name) + " is down");
  if (rejected.empty()) throw SourceError("interface " + std::string(name) + " has no IP address");
  throw SourceError("interface " + std::string(name) + " has no usable address (" + join(rejected) + ")");
}

std::string first_global_address() {
  const auto list = interfaces();
  std::vector<std::string> rejected;
  for (int family : {AF_INET, AF_INET6}) {
    for (const ifaddrs* i = list.get(); i; i = i->ifa_next) {
      if (!is_ip(i) || i->ifa_addr->sa_family != family) continue;
      if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
      if (is_virtual_bridge(i->ifa_name)) {
        rejected.push_back(std::string(i->ifa_name) + " is a container or VM bridge");
        continue;
      }
      const auto check = check_agent_address(i->ifa_addr);
      if (check.usable()) return check.address;
      rejected.push_back(std::string(i->ifa_name) + ": " + check.problem);
    }
  }
  throw SourceError("no interface that is up has a usable address (" + join(rejected) + ")");
}

} // namespace kb::net

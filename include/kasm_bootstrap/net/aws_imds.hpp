#pragma once
// AWS Instance Metadata Service, version 2: a session token from PUT /latest/api/token,
// then GETs that carry it. IMDSv1 (plain GET) is refused with 401 on instances that
// require tokens, which is exactly how the bash startup script loses the address.

#include "kasm_bootstrap/net/metadata_client.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace kb::net {

// The pure parts of reading IMDS answers, apart from the HTTP so they can be fuzzed.
// A session token is 1-512 printable, space-free ASCII characters; anything else is an
// answer from something that is not IMDS.
bool plausible_imds_token(std::string_view token);
// Multi-valued items (ipv6s, ipv6) list one value per line; the first is the primary.
std::string imds_first_line(std::string_view text);
// The MAC address in the answer to 'mac' (aa:bb:cc:dd:ee:ff); throws SourceError otherwise.
std::string imds_mac(std::string_view body);

class AwsImds {
public:
  explicit AwsImds(const MetadataClient& client) : client_(client) {}

  // A meta-data item ("local-ipv4", "network/interfaces/macs/<mac>/ipv6s"), body as sent.
  // nullopt when the item is absent (404). Throws SourceError when IMDS cannot answer:
  // disabled (403), no answer to the token request (hop limit), throttled past the
  // budget, garbage instead of a token.
  std::optional<std::string> get(std::string_view item);

  // The instance's private address: local-ipv4, or on an IPv6-only subnet its ipv6.
  std::string private_address();
  // Its public address: public-ipv4, else the primary interface's first IPv6 address
  // (AWS IPv6 addresses are globally routable).
  std::string public_address();

private:
  void fetch_token();

  const MetadataClient& client_;
  std::optional<std::string> token_;
  // The service refused PUT (404/405): an EC2-compatible service of another cloud that
  // only speaks the tokenless protocol.
  bool tokenless_ = false;
};

} // namespace kb::net

#include "kasm_bootstrap/net/aws_imds.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include "kasm_bootstrap/net/agent_ip.hpp"
#include "kasm_bootstrap/net/source_error.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <algorithm>
#include <cctype>

namespace kb::net {
namespace {

using Kind = MetadataReply::Kind;

constexpr const char* kTokenPath = "/latest/api/token";
// The maximum TTL: one token serves the whole run.
constexpr const char* kTokenTtlHeader = "X-aws-ec2-metadata-token-ttl-seconds: 21600";

std::string disabled_message(const std::string& what) {
  return what + " was refused with HTTP 403: the instance metadata service is disabled on this instance "
                "(HttpEndpoint=disabled), or the request was refused by policy";
}

} // namespace

bool plausible_imds_token(std::string_view token) {
  return !token.empty() && token.size() <= 512 &&
         std::all_of(token.begin(), token.end(), [](unsigned char c) { return c > 0x20 && c < 0x7F; });
}

std::string imds_first_line(std::string_view text) { return std::string(text.substr(0, text.find('\n'))); }

std::string imds_mac(std::string_view body) {
  auto m = imds_first_line(body);
  const bool looks_like_mac =
      m.size() == 17 && std::all_of(m.begin(), m.end(), [](unsigned char c) { return std::isxdigit(c) || c == ':'; });
  if (!looks_like_mac)
    throw SourceError("IMDS answered 'mac' with '" + util::quote_for_message(m) + "', which is not a MAC address");
  return m;
}

void AwsImds::fetch_token() {
  const auto reply = client_.request("PUT", kTokenPath, {kTokenTtlHeader});
  const std::string what = "the IMDSv2 token request";
  switch (reply.kind) {
  case Kind::kOk:
    if (!plausible_imds_token(reply.body()))
      throw SourceError(what + " (PUT " + client_.base_url() + kTokenPath +
                        ") answered with something that is not a token: '" + util::quote_for_message(reply.body()) +
                        "'");
    token_ = reply.body();
    return;
  case Kind::kForbidden: throw SourceError(disabled_message(what + " (PUT " + client_.base_url() + kTokenPath + ")"));
  case Kind::kAbsent:
  case Kind::kRejected:
    if (reply.response.status == 404 || reply.response.status == 405) {
      log::debug("{} answered HTTP {}: this metadata service has no IMDSv2; asking without a token", what,
                 reply.response.status);
      tokenless_ = true;
      return;
    }
    throw SourceError(what + " was rejected: " + reply.problem);
  case Kind::kUnauthorized: throw SourceError(what + " was refused: " + reply.problem);
  case Kind::kFailed:
    if (reply.never_answered)
      throw SourceError("no answer to " + what + ": " + reply.problem +
                        ". IMDS may be disabled, or its hop limit (HttpPutResponseHopLimit) may be too low for this "
                        "network path (inside a container it must be at least 2)");
    throw SourceError(what + " failed: " + reply.problem);
  }
}

std::optional<std::string> AwsImds::get(std::string_view item) {
  const std::string path = "/latest/meta-data/" + std::string(item);
  // One fresh token when the old one is refused (expired, or the service restarted).
  for (int round = 0; round < 2; ++round) {
    if (!token_ && !tokenless_) fetch_token();
    std::vector<std::string> headers;
    if (token_) headers.push_back("X-aws-ec2-metadata-token: " + *token_);
    const auto reply = client_.request("GET", path, headers);
    const std::string what = "GET " + client_.base_url() + path;
    switch (reply.kind) {
    case Kind::kOk: return reply.body();
    case Kind::kAbsent: return std::nullopt;
    case Kind::kForbidden: throw SourceError(disabled_message(what));
    case Kind::kUnauthorized:
      if (tokenless_)
        throw SourceError(what + " was refused with HTTP 401 (the service wants a token but refused to issue one)");
      log::debug("{}: token refused (HTTP 401); asking for a new one", what);
      token_.reset();
      continue;
    case Kind::kRejected:
    case Kind::kFailed: throw SourceError(reply.problem);
    }
  }
  throw SourceError("GET " + client_.base_url() + path + " refused a freshly issued IMDSv2 token (HTTP 401 twice)");
}

std::string AwsImds::private_address() {
  if (auto v4 = get("local-ipv4")) return *v4;
  if (auto v6 = get("ipv6")) return imds_first_line(*v6);
  throw SourceError("IMDS has neither local-ipv4 nor ipv6 for this instance (HTTP 404 for both)");
}

std::string AwsImds::public_address() {
  if (auto v4 = get("public-ipv4")) return *v4;
  const auto mac = get("mac");
  if (mac && !mac->empty()) {
    const auto m = imds_mac(*mac);
    if (auto v6 = get("network/interfaces/macs/" + m + "/ipv6s"); v6 && !v6->empty()) return imds_first_line(*v6);
  }
  throw SourceError("this instance has no public IPv4 address (IMDS public-ipv4: HTTP 404) and no IPv6 address; "
                    "launch it with a public IP, or use aws-imds for the private address");
}

} // namespace kb::net

#include "kasm_bootstrap/net/metadata_services.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include "kasm_bootstrap/net/agent_ip.hpp"
#include "kasm_bootstrap/net/source_error.hpp"
#include "kasm_bootstrap/util/json_text.hpp"

#include <arpa/inet.h>
#include <nlohmann/json.hpp>

namespace kb::net {
namespace {

using Kind = MetadataReply::Kind;

// docs/platform.md, "Cloud metadata services": every request names its service this way.
constexpr const char* kGcpFlavorHeader = "Metadata-Flavor: Google";
constexpr const char* kAzureHeader = "Metadata: true";
constexpr const char* kGcpNic0 = "/computeMetadata/v1/instance/network-interfaces/0/";
constexpr const char* kAzureIpv4 = "/metadata/instance/network/interface/0/ipv4/ipAddress/0/";
constexpr const char* kAzureTextQuery = "?api-version=2021-02-01&format=text";
// The version that introduced the load balancer category.
constexpr const char* kAzureLoadBalancer = "/metadata/loadbalancer?api-version=2020-10-01";
constexpr const char* kEc2MetaData = "/latest/meta-data/";

std::string explain(const MetadataClient& client, const std::string& path, const MetadataReply& reply) {
  const std::string what = "GET " + client.base_url() + path;
  switch (reply.kind) {
  case Kind::kAbsent: return what + ": HTTP 404, the item does not exist on this instance";
  case Kind::kUnauthorized:
  case Kind::kForbidden:
    return what + ": refused with HTTP " + std::to_string(reply.response.status) +
           (reply.body().empty() ? "" : " '" + util::quote_for_message(reply.body()) + "'");
  default: return reply.problem;
  }
}

std::string get_item(const MetadataClient& client, const std::string& path, const std::vector<std::string>& headers) {
  const auto reply = client.request("GET", path, headers);
  if (!reply.ok()) throw SourceError(explain(client, path, reply));
  return reply.body();
}

bool blank_body(std::string_view body) { return body.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// The real server always sets it; without it the answer came from something else
// (a captive portal, another cloud's service) and its body means nothing here.
void require_gcp_flavor(const MetadataClient& client, const std::string& path, const MetadataReply& reply) {
  if (reply.response.header("metadata-flavor") != std::optional<std::string>("Google"))
    throw SourceError("GET " + client.base_url() + path +
                      " answered without the 'Metadata-Flavor: Google' header: not the GCP metadata server");
}

} // namespace

std::string metadata_ipv4(std::string_view body, const std::string& what) {
  const auto first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos)
    throw SourceError(what + " answered HTTP 200 with an empty body where an IPv4 address belongs");
  const auto last = body.find_last_not_of(" \t\r\n");
  const std::string text(body.substr(first, last - first + 1));
  in_addr v4{};
  if (text.size() <= 15 && ::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    char canonical[INET_ADDRSTRLEN] = {0};
    ::inet_ntop(AF_INET, &v4, canonical, sizeof canonical);
    return canonical;
  }
  in6_addr v6{};
  if (text.size() < INET6_ADDRSTRLEN && ::inet_pton(AF_INET6, text.c_str(), &v6) == 1)
    throw SourceError(what + " answered '" + util::quote_for_message(text) +
                      "', an IPv6 address, where the service's schema has an IPv4 address: not the service this "
                      "source asks for");
  throw SourceError(what + " answered with something that is not an IPv4 address: '" + util::quote_for_message(text) +
                    "'");
}

std::string gcp_address(const MetadataClient& client) {
  const std::string path = std::string(kGcpNic0) + "ip";
  const auto reply = client.request("GET", path, {kGcpFlavorHeader});
  if (!reply.ok()) throw SourceError(explain(client, path, reply));
  require_gcp_flavor(client, path, reply);
  return reply.body();
}

std::string gcp_public_address(const MetadataClient& client) {
  const std::string path = std::string(kGcpNic0) + "access-configs/0/external-ip";
  const std::string what = "GET " + client.base_url() + path;
  const auto reply = client.request("GET", path, {kGcpFlavorHeader});
  if (reply.kind == Kind::kAbsent)
    throw SourceError(what + ": HTTP 404, nic0 has no access config: this instance has no external IP; give it one, "
                             "or use gcp for its internal address");
  if (!reply.ok()) throw SourceError(explain(client, path, reply));
  require_gcp_flavor(client, path, reply);
  if (blank_body(reply.body()))
    throw SourceError(what + " answered HTTP 200 with an empty body: nic0's access config has no external IP");
  return metadata_ipv4(reply.body(), what);
}

std::string azure_address(const MetadataClient& client) {
  return get_item(client, std::string(kAzureIpv4) + "privateIpAddress" + kAzureTextQuery, {kAzureHeader});
}

std::string azure_lb_public_ip(const std::string& body, const std::string& what) {
  if (util::json_too_deep(body))
    throw SourceError(what + " answered with JSON nested deeper than any load balancer document: '" +
                      util::quote_for_message(body) + "'");
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded())
    throw SourceError(what + " answered with something that is not JSON: '" + util::quote_for_message(body) + "'");
  const nlohmann::json* list = nullptr;
  if (doc.is_object() && doc.contains("loadbalancer") && doc["loadbalancer"].is_object() &&
      doc["loadbalancer"].contains("publicIpAddresses") && doc["loadbalancer"]["publicIpAddresses"].is_array())
    list = &doc["loadbalancer"]["publicIpAddresses"];
  if (!list)
    throw SourceError(what + " answered without loadbalancer.publicIpAddresses: '" + util::quote_for_message(body) +
                      "'");
  for (const auto& entry : *list) {
    if (!entry.is_object() || !entry.contains("frontendIpAddress") || !entry["frontendIpAddress"].is_string()) continue;
    const auto ip = entry["frontendIpAddress"].get<std::string>();
    in_addr v4{};
    if (ip.size() <= 15 && ::inet_pton(AF_INET, ip.c_str(), &v4) == 1) return metadata_ipv4(ip, what);
  }
  throw SourceError(what + ": loadbalancer.publicIpAddresses lists no IPv4 frontendIpAddress (no instance-level "
                           "public IPv4 address)");
}

std::string azure_public_address(const MetadataClient& client) {
  const std::string path = std::string(kAzureIpv4) + "publicIpAddress" + kAzureTextQuery;
  const std::string what = "GET " + client.base_url() + path;
  const auto body = get_item(client, path, {kAzureHeader});
  if (!blank_body(body)) return metadata_ipv4(body, what);

  // Empty: no Basic-SKU public IP. A Standard-SKU one shows in the load balancer category.
  const std::string lb_what = "GET " + client.base_url() + kAzureLoadBalancer;
  const auto lb = client.request("GET", kAzureLoadBalancer, {kAzureHeader});
  if (lb.kind == Kind::kAbsent)
    throw SourceError(what + " answered an empty publicIpAddress (no Basic-SKU public IP on interface 0), and " +
                      lb_what +
                      " has no load balancer metadata (HTTP 404: the VM is behind no Standard load balancer). IMDS "
                      "shows no public IP for this VM; use azure for its private address, or set agent_address");
  if (!lb.ok())
    throw SourceError(what + " answered an empty publicIpAddress, and the load balancer metadata failed: " +
                      explain(client, kAzureLoadBalancer, lb));
  return azure_lb_public_ip(lb.body(), lb_what);
}

std::string oci_address(const MetadataClient& client) {
  const std::string path = "/opc/v2/vnics/";
  return oci_private_ip(get_item(client, path, {"Authorization: Bearer Oracle"}), "GET " + client.base_url() + path);
}

std::string oci_private_ip(const std::string& body, const std::string& what) {
  if (util::json_too_deep(body))
    throw SourceError(what + " answered with JSON nested deeper than any VNIC list: '" + util::quote_for_message(body) +
                      "'");
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded())
    throw SourceError(what + " answered with something that is not JSON: '" + util::quote_for_message(body) + "'");
  if (!doc.is_array() || doc.empty())
    throw SourceError(what + " answered without any VNIC: '" + util::quote_for_message(body) + "'");
  const auto& first = doc.front();
  if (!first.is_object() || !first.contains("privateIp") || !first["privateIp"].is_string())
    throw SourceError(what + ": the first VNIC has no privateIp: '" + util::quote_for_message(first.dump()) + "'");
  return first["privateIp"].get<std::string>();
}

std::string digitalocean_address(const MetadataClient& client) {
  // Droplets without a VPC interface have only the public one, which is then the address.
  const std::string private_path = "/metadata/v1/interfaces/private/0/ipv4/address";
  const auto reply = client.request("GET", private_path, {});
  if (reply.ok()) return reply.body();
  if (reply.kind != Kind::kAbsent) throw SourceError(explain(client, private_path, reply));
  return get_item(client, "/metadata/v1/interfaces/public/0/ipv4/address", {});
}

namespace {

// Nova's EC2-compatible items, tokenless. A 401 means an EC2-style service that wants
// IMDSv2 tokens, which aws-imds speaks.
MetadataReply openstack_item(const MetadataClient& client, const std::string& path) {
  auto reply = client.request("GET", path, {});
  if (reply.kind == Kind::kUnauthorized)
    throw SourceError(explain(client, path, reply) +
                      ": this EC2-compatible service wants an IMDSv2 session token, which OpenStack Nova never "
                      "does; use aws-imds (or aws-imds-public), which asks with one");
  return reply;
}

} // namespace

std::string openstack_address(const MetadataClient& client) {
  const std::string path = std::string(kEc2MetaData) + "local-ipv4";
  const std::string what = "GET " + client.base_url() + path;
  const auto reply = openstack_item(client, path);
  if (reply.kind == Kind::kAbsent)
    throw SourceError(what + ": HTTP 404: no EC2-compatible meta-data here, which every OpenStack Nova metadata "
                             "service has; not an OpenStack metadata service");
  if (!reply.ok()) throw SourceError(explain(client, path, reply));
  return metadata_ipv4(reply.body(), what);
}

std::string openstack_public_address(const MetadataClient& client) {
  const std::string path = std::string(kEc2MetaData) + "public-ipv4";
  const std::string what = "GET " + client.base_url() + path;
  const auto reply = openstack_item(client, path);
  if (reply.kind == Kind::kAbsent || (reply.ok() && blank_body(reply.body())))
    throw SourceError(what + (reply.ok() ? " answered with an empty body" : ": HTTP 404") +
                      ": this instance has no floating IP; associate one, or use openstack for its fixed address");
  if (!reply.ok()) throw SourceError(explain(client, path, reply));
  return metadata_ipv4(reply.body(), what);
}

} // namespace kb::net

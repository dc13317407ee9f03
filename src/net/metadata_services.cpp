#include "kasm_bootstrap/net/metadata_services.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include "kasm_bootstrap/net/agent_ip.hpp"
#include "kasm_bootstrap/net/source_error.hpp"
#include "kasm_bootstrap/util/json_text.hpp"

#include <nlohmann/json.hpp>

namespace kb::net {
namespace {

using Kind = MetadataReply::Kind;

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

} // namespace

std::string gcp_address(const MetadataClient& client) {
  const std::string path = "/computeMetadata/v1/instance/network-interfaces/0/ip";
  const auto reply = client.request("GET", path, {"Metadata-Flavor: Google"});
  if (!reply.ok()) throw SourceError(explain(client, path, reply));
  // The real server always sets it; without it the answer came from something else
  // (a captive portal, another cloud's service) and its body means nothing here.
  if (reply.response.header("metadata-flavor") != std::optional<std::string>("Google"))
    throw SourceError("GET " + client.base_url() + path +
                      " answered without the 'Metadata-Flavor: Google' header: not the GCP metadata server");
  return reply.body();
}

std::string azure_address(const MetadataClient& client) {
  return get_item(client,
                  "/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress"
                  "?api-version=2021-02-01&format=text",
                  {"Metadata: true"});
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

} // namespace kb::net

#pragma once
// The private address of this instance from the metadata services of GCP, Azure, Oracle
// Cloud and DigitalOcean (AWS: aws_imds.hpp). All of them answer at 169.254.169.254, so
// one base URL (config imds_endpoint) serves them all and no DNS is needed. Each throws
// SourceError naming the request and the reason when it gives no address.

#include "kasm_bootstrap/net/metadata_client.hpp"

#include <string>

namespace kb::net {

std::string gcp_address(const MetadataClient& client);
std::string azure_address(const MetadataClient& client);
std::string oci_address(const MetadataClient& client);
std::string digitalocean_address(const MetadataClient& client);

// The privateIp of the first VNIC in an OCI /opc/v2/vnics/ answer; throws SourceError
// naming `what` (the request) when the body holds none. Pure, so it can be fuzzed.
std::string oci_private_ip(const std::string& body, const std::string& what);

} // namespace kb::net

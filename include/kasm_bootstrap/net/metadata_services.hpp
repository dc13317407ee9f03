#pragma once
// The addresses of this instance from the metadata services of GCP, Azure, Oracle Cloud,
// DigitalOcean and OpenStack (AWS: aws_imds.hpp). All of them answer at 169.254.169.254,
// so one base URL (config imds_endpoint) serves them all and no DNS is needed. Each
// throws SourceError naming the request and the reason when it gives no address. What
// each service answers, and where that is documented: docs/platform.md, "Cloud metadata
// services".

#include "kasm_bootstrap/net/metadata_client.hpp"

#include <string>
#include <string_view>

namespace kb::net {

// Private (internal) addresses.
std::string gcp_address(const MetadataClient& client);
std::string azure_address(const MetadataClient& client);
std::string oci_address(const MetadataClient& client);
std::string digitalocean_address(const MetadataClient& client);
// OpenStack Nova's EC2-compatible meta-data/local-ipv4, asked without a token as
// cloud-init's OpenStack datasource does (Nova has no IMDSv2 session tokens).
std::string openstack_address(const MetadataClient& client);

// Public addresses, each an IPv4 address by the service's own schema.
// GCP: nic0's first access config (the one-to-one NAT address); HTTP 404 when the
// instance has no external IP.
std::string gcp_public_address(const MetadataClient& client);
// Azure: interface 0's publicIpAddress (empty unless the VM has a Basic-SKU public IP),
// then the instance-level public IP from /metadata/loadbalancer (Standard SKU, shown only
// for a VM behind a Standard load balancer).
std::string azure_public_address(const MetadataClient& client);
// OpenStack: meta-data/public-ipv4, the floating IP; Nova answers it with an empty body
// when the instance has none.
std::string openstack_public_address(const MetadataClient& client);

// The privateIp of the first VNIC in an OCI /opc/v2/vnics/ answer; throws SourceError
// naming `what` (the request) when the body holds none. Pure, so it can be fuzzed.
std::string oci_private_ip(const std::string& body, const std::string& what);
// The first IPv4 frontendIpAddress of loadbalancer.publicIpAddresses in an Azure
// /metadata/loadbalancer answer; throws SourceError naming `what` otherwise. Pure.
std::string azure_lb_public_ip(const std::string& body, const std::string& what);
// The IPv4 address a metadata item holds (surrounding whitespace ignored), in canonical
// form; throws SourceError naming `what` when the body is empty, an IPv6 address, or not
// an address at all (HTML from a captive portal, binary). Pure.
std::string metadata_ipv4(std::string_view body, const std::string& what);

} // namespace kb::net

#pragma once
// Which cloud this machine runs on, decided locally from DMI (SMBIOS) strings under the
// root dir, so no time is spent waiting on a metadata service that is not there.

#include "kasm_bootstrap/system/root_fs.hpp"

#include <string>
#include <string_view>

namespace kb::net {

// kKubeVirt (and Harvester on it) has no metadata address service: its address comes from
// the local sources (route, interface).
enum class Cloud { kUnknown, kAws, kGcp, kAzure, kOci, kDigitalOcean, kOpenStack, kKubeVirt };

// "aws", "gcp", ...: the same spelling as the metadata source of that cloud in
// address_sources ("unknown" for kUnknown).
std::string_view cloud_name(Cloud cloud);
// The address source that asks this cloud's metadata service for its private address
// ("aws-imds", "gcp", "openstack", ...); empty for kUnknown and kKubeVirt.
std::string_view cloud_metadata_source(Cloud cloud);

struct CloudDetection {
  Cloud cloud = Cloud::kUnknown;
  std::string evidence; // "sys_vendor is 'Amazon EC2'", or why nothing matched
};

CloudDetection detect_cloud(const sys::RootFs& fs);

} // namespace kb::net

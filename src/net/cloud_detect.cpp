#include "kasm_bootstrap/net/cloud.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include "kasm_bootstrap/net/agent_ip.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

namespace kb::net {
namespace {

constexpr const char* kDmiDir = "/sys/class/dmi/id/";
// Azure's fixed chassis asset tag; a local Hyper-V guest has a different one.
constexpr std::string_view kAzureAssetTag = "7783-7084-3265-9085-8269-3286-77";

std::optional<std::string> read_dmi(const sys::RootFs& fs, const std::string& path) {
  try {
    auto text = fs.read_file(path, 4096);
    if (!text) return std::nullopt;
    while (!text->empty() && std::isspace(static_cast<unsigned char>(text->back())))
      text->pop_back();
    return text;
  } catch (const std::exception&) {
    // product_uuid is root-only, and some hypervisors expose unreadable entries: no evidence.
    return std::nullopt;
  }
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

struct Rule {
  const char* file; // under /sys/class/dmi/id, or an absolute machine path
  enum Match { kEquals, kStartsWith, kContains } match;
  std::string_view needle; // compared case-insensitively
  Cloud cloud;
};

// Most specific first. The Xen-era EC2 instances do not say "Amazon EC2" in sys_vendor
// but carry "amazon" in their BIOS version and an "ec2" prefix in their UUIDs.
constexpr std::array kRules = {
    Rule{"sys_vendor", Rule::kEquals, "amazon ec2", Cloud::kAws},
    Rule{"board_vendor", Rule::kEquals, "amazon ec2", Cloud::kAws},
    Rule{"bios_vendor", Rule::kEquals, "amazon ec2", Cloud::kAws},
    Rule{"bios_version", Rule::kContains, "amazon", Cloud::kAws},
    Rule{"/sys/hypervisor/uuid", Rule::kStartsWith, "ec2", Cloud::kAws},
    Rule{"product_uuid", Rule::kStartsWith, "ec2", Cloud::kAws},
    Rule{"sys_vendor", Rule::kEquals, "google", Cloud::kGcp},
    Rule{"product_name", Rule::kEquals, "google compute engine", Cloud::kGcp},
    Rule{"chassis_asset_tag", Rule::kEquals, kAzureAssetTag, Cloud::kAzure},
    Rule{"sys_vendor", Rule::kEquals, "microsoft corporation", Cloud::kAzure},
    Rule{"chassis_asset_tag", Rule::kEquals, "oraclecloud.com", Cloud::kOci},
    Rule{"sys_vendor", Rule::kEquals, "digitalocean", Cloud::kDigitalOcean},
    // cloud-init's ds-identify (dscheck_OpenStack) and DataSourceOpenStack: the product
    // names Nova sets, and the asset tags of OpenStack clouds that change them; Nova's
    // default manufacturer (nova/version.py). docs/platform.md, "Cloud metadata services".
    Rule{"product_name", Rule::kEquals, "openstack nova", Cloud::kOpenStack},
    Rule{"product_name", Rule::kEquals, "openstack compute", Cloud::kOpenStack},
    Rule{"chassis_asset_tag", Rule::kEquals, "opentelekomcloud", Cloud::kOpenStack},
    Rule{"chassis_asset_tag", Rule::kEquals, "sap ccloud vm", Cloud::kOpenStack},
    Rule{"chassis_asset_tag", Rule::kEquals, "huaweicloud", Cloud::kOpenStack},
    Rule{"chassis_asset_tag", Rule::kEquals, "openstack nova", Cloud::kOpenStack},
    Rule{"chassis_asset_tag", Rule::kEquals, "openstack compute", Cloud::kOpenStack},
    Rule{"sys_vendor", Rule::kEquals, "openstack foundation", Cloud::kOpenStack},
    // KubeVirt's SMBIOS defaults (manufacturer and family "KubeVirt", product "None");
    // the cluster's KubeVirt resource can change them.
    Rule{"sys_vendor", Rule::kEquals, "kubevirt", Cloud::kKubeVirt},
    Rule{"product_family", Rule::kEquals, "kubevirt", Cloud::kKubeVirt},
};

bool matches(const Rule& rule, const std::string& value) {
  const auto v = lower(value);
  switch (rule.match) {
  case Rule::kEquals: return v == rule.needle;
  case Rule::kStartsWith: return v.rfind(rule.needle, 0) == 0;
  case Rule::kContains: return v.find(rule.needle) != std::string::npos;
  }
  return false;
}

} // namespace

std::string_view cloud_name(Cloud cloud) {
  switch (cloud) {
  case Cloud::kAws: return "aws";
  case Cloud::kGcp: return "gcp";
  case Cloud::kAzure: return "azure";
  case Cloud::kOci: return "oci";
  case Cloud::kDigitalOcean: return "digitalocean";
  case Cloud::kOpenStack: return "openstack";
  case Cloud::kKubeVirt: return "kubevirt";
  case Cloud::kUnknown: break;
  }
  return "unknown";
}

std::string_view cloud_metadata_source(Cloud cloud) {
  if (cloud == Cloud::kAws) return "aws-imds";
  if (cloud == Cloud::kUnknown || cloud == Cloud::kKubeVirt) return {};
  return cloud_name(cloud);
}

CloudDetection detect_cloud(const sys::RootFs& fs) {
  std::string sys_vendor;
  for (const auto& rule : kRules) {
    const std::string path = rule.file[0] == '/' ? rule.file : std::string(kDmiDir) + rule.file;
    const auto value = read_dmi(fs, path);
    if (!value) continue;
    if (std::string_view(rule.file) == "sys_vendor") sys_vendor = *value;
    if (matches(rule, *value)) return {rule.cloud, path + " is '" + util::quote_for_message(*value) + "'"};
  }
  if (sys_vendor.empty()) return {Cloud::kUnknown, "no DMI vendor under " + std::string(kDmiDir)};
  return {Cloud::kUnknown, "DMI vendor '" + util::quote_for_message(sys_vendor) + "' is not a known cloud"};
}

} // namespace kb::net

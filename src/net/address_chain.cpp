#include "kasm_bootstrap/net/address_chain.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/net/agent_ip.hpp"
#include "kasm_bootstrap/net/aws_imds.hpp"
#include "kasm_bootstrap/net/local_address.hpp"
#include "kasm_bootstrap/net/metadata_services.hpp"
#include "kasm_bootstrap/net/source_error.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <algorithm>
#include <optional>

namespace kb::net {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kInterfacePrefix = "interface:";

// Keeps the IMDSv2 token between aws-imds and aws-imds-public.
struct Services {
  MetadataClient client;
  std::optional<AwsImds> aws;
};

std::string ask(const std::string& source, Services& services) {
  if (source == "aws-imds" || source == "aws-imds-public") {
    if (!services.aws) services.aws.emplace(services.client);
    return source == "aws-imds" ? services.aws->private_address() : services.aws->public_address();
  }
  if (source == "gcp") return gcp_address(services.client);
  if (source == "gcp-public") return gcp_public_address(services.client);
  if (source == "azure") return azure_address(services.client);
  if (source == "azure-public") return azure_public_address(services.client);
  if (source == "openstack") return openstack_address(services.client);
  if (source == "openstack-public") return openstack_public_address(services.client);
  if (source == "oci") return oci_address(services.client);
  if (source == "digitalocean") return digitalocean_address(services.client);
  if (source == "route") return route_source_address();
  if (source == "first-global") return first_global_address();
  if (source.rfind(kInterfacePrefix, 0) == 0) return interface_address(std::string_view(source).substr(10));
  throw SourceError("unknown address source");
}

Cloud cloud_of_source(std::string_view source) {
  if (source == "aws-imds" || source == "aws-imds-public") return Cloud::kAws;
  if (source == "gcp" || source == "gcp-public") return Cloud::kGcp;
  if (source == "azure" || source == "azure-public") return Cloud::kAzure;
  if (source == "openstack" || source == "openstack-public") return Cloud::kOpenStack;
  if (source == "oci") return Cloud::kOci;
  if (source == "digitalocean") return Cloud::kDigitalOcean;
  return Cloud::kUnknown;
}

std::string failure_message(const std::vector<SourceAttempt>& attempts) {
  std::string m = "no usable agent address";
  if (attempts.empty()) return m + ": no address source was tried";
  m += " from any source: ";
  for (std::size_t i = 0; i < attempts.size(); ++i)
    m += (i ? "; " : "") + attempts[i].source + ": " + attempts[i].detail;
  return m + ". Set agent_address (or external_fqdn) to skip detection, or choose other address_sources";
}

} // namespace

bool is_metadata_source(std::string_view source) { return cloud_of_source(source) != Cloud::kUnknown; }

std::vector<std::string> expand_address_sources(const std::vector<std::string>& configured, Cloud cloud) {
  std::vector<std::string> out;
  auto add = [&out](std::string s) {
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  };
  for (const auto& source : configured) {
    if (source != "auto") {
      add(source);
      continue;
    }
    if (const auto metadata = cloud_metadata_source(cloud); !metadata.empty()) add(std::string(metadata));
    add("route");
    add("first-global");
  }
  return out;
}

DetectedAddress detect_agent_address(const config::Config& config, const Machine& machine,
                                     const std::atomic<bool>* cancel) {
  DetectedAddress result;
  if (!config.external_fqdn.empty()) {
    if (!config.agent_address.empty())
      log::info("agent address: external_fqdn {} wins over agent_address {}", config.external_fqdn,
                config.agent_address);
    result.address = config.external_fqdn;
    result.source = "external_fqdn";
    return result;
  }
  if (!config.agent_address.empty()) {
    const auto check = check_agent_address(config.agent_address);
    if (!check.usable())
      log::warn("agent_address {} is used as configured, although {}: the manager may not reach the agent there",
                config.agent_address, check.problem);
    result.address = check.address.empty() ? config.agent_address : check.address;
    result.source = "agent_address";
    return result;
  }

  result.cloud = detect_cloud(machine.fs);
  const auto sources = expand_address_sources(config.address_sources, result.cloud.cloud);
  std::string chain;
  for (const auto& s : sources)
    chain += (chain.empty() ? "" : ", ") + s;
  log::info("agent address: cloud {} ({}); trying {}", cloud_name(result.cloud.cloud), result.cloud.evidence, chain);

  const Budget budget(std::chrono::seconds(config.address_timeout_seconds), cancel);
  Services services{MetadataClient(machine.http, config.imds_endpoint, budget), std::nullopt};
  for (const auto& source : sources) {
    if (budget.cancelled()) throw Error(ExitCode::kInterrupted, "address detection interrupted");
    const auto started = std::chrono::steady_clock::now();
    SourceAttempt attempt{source, false, {}, milliseconds(0)};
    if (is_metadata_source(source) && budget.exhausted()) {
      attempt.detail = "not asked: the address_timeout_seconds budget (" +
                       std::to_string(config.address_timeout_seconds) + " s) is used up";
    } else {
      try {
        const auto answer = ask(source, services);
        const auto check = check_agent_address(answer);
        if (check.usable()) {
          attempt.succeeded = true;
          attempt.detail = check.address;
        } else {
          attempt.detail = "answered, but " + check.problem;
        }
      } catch (const SourceError& e) {
        attempt.detail = e.what();
      }
      if (budget.cancelled()) throw Error(ExitCode::kInterrupted, "address detection interrupted");
    }
    if (!attempt.succeeded && is_metadata_source(source) && cloud_of_source(source) == result.cloud.cloud)
      attempt.detail +=
          " [DMI says this is " + std::string(cloud_name(result.cloud.cloud)) + ": " + result.cloud.evidence + "]";
    attempt.took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
    result.attempts.push_back(attempt);
    if (attempt.succeeded) {
      log::info("agent address {} from {} ({} ms)", attempt.detail, source, attempt.took.count());
      result.address = attempt.detail;
      result.source = source;
      return result;
    }
    log::info("address source {} skipped after {} ms: {}", source, attempt.took.count(), attempt.detail);
  }
  throw Error(ExitCode::kAddress, failure_message(result.attempts));
}

} // namespace kb::net

#pragma once
// Finding the agent address: an explicit external_fqdn or agent_address wins without any
// lookup; otherwise the sources of address_sources are tried in order ("auto" = the
// metadata service of the cloud DMI names, then the default-route address, then the
// first global address) until one gives a usable address. Metadata sources share one
// time budget (address_timeout_seconds); local sources cost nothing and always run.

#include "kasm_bootstrap/config/config.hpp"
#include "kasm_bootstrap/net/cloud.hpp"
#include "kasm_bootstrap/system/machine.hpp"

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

namespace kb::net {

struct SourceAttempt {
  std::string source;
  bool succeeded = false;
  std::string detail; // the address, or why the source gave none
  std::chrono::milliseconds took{0};
};

struct DetectedAddress {
  std::string address;
  std::string source; // "external_fqdn", "agent_address", or the address source that answered
  CloudDetection cloud;
  std::vector<SourceAttempt> attempts; // in order; the last one succeeded
};

bool is_metadata_source(std::string_view source);

// address_sources with "auto" replaced by the chain for `cloud`, duplicates dropped.
std::vector<std::string> expand_address_sources(const std::vector<std::string>& configured, Cloud cloud);

// Throws kb::Error(ExitCode::kAddress) naming every source and its reason when none gives
// an address, and kb::Error(ExitCode::kInterrupted) when `cancel` becomes true.
DetectedAddress detect_agent_address(const config::Config& config, const Machine& machine,
                                     const std::atomic<bool>* cancel = nullptr);

} // namespace kb::net

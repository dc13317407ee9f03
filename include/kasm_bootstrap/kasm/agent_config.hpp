#pragma once
// agent.app.config.yaml, the Kasm agent's own configuration: install.sh wrote it with
// placeholder registration values (kasm/installer.hpp); configure-agent writes this
// instance's registration keys the way Kasm's upgrade script does (with a YAML library,
// not sed) and keeps every other key and value as it was. docs/kasm-installer.md §2.

#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/util/secret.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kb::kasm {

struct AgentRegistration {
  std::string server_id;
  std::string public_hostname;
  std::string provider; // empty = keep the release's value (install.sh writes it only with -r)
  std::vector<std::string> manager_hostnames;
  const Secret* manager_token = nullptr;
  std::int64_t agent_public_port = 443;   // kasm_proxy's port (install.sh -L)
  std::int64_t manager_public_port = 443; // where the manager's API answers
};

// The keys written, for messages: "agent.server_id, agent.public_hostname, ...".
std::string registration_keys();

// Throws kb::Error(kInstall) naming `where` when the text is not YAML or lacks the
// `agent` and `manager` mappings.
void check_agent_config(std::string_view text, const std::string& where);

// True when the registration keys already hold these values.
bool agent_config_matches(std::string_view text, const AgentRegistration& registration, const std::string& where);

// The document with the registration keys set; everything else is carried over.
std::string rewrite_agent_config(std::string_view text, const AgentRegistration& registration,
                                 const std::string& where);

// Rewrites the file atomically, mode 0600 (it holds the token) and owned by `owner`.
void rewrite_agent_config_file(const sys::RootFs& fs, const std::string& machine_path,
                               const AgentRegistration& registration, sys::FileOwner owner);

} // namespace kb::kasm

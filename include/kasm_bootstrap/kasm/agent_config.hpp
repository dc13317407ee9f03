#pragma once
// agent.app.config.yaml, the Kasm agent's own configuration: the pre-baked fast path
// rewrites the five registration keys the installer wrote with placeholder values, the
// way Kasm's upgrade script does, and keeps every other key and value as it was.

#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/util/secret.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace kb::kasm {

struct AgentRegistration {
  std::string server_id;
  std::string public_hostname;
  std::string provider;
  std::vector<std::string> manager_hostnames;
  const Secret* manager_token = nullptr;
};

// Throws kb::Error(kInstall) naming `where` when the text is not YAML or lacks the
// `agent` and `manager` mappings.
void check_agent_config(std::string_view text, const std::string& where);

// True when the five keys already hold these values.
bool agent_config_matches(std::string_view text, const AgentRegistration& registration, const std::string& where);

// The document with the five keys set; everything else is carried over.
std::string rewrite_agent_config(std::string_view text, const AgentRegistration& registration,
                                 const std::string& where);

// Rewrites the file in place: atomically, with its original mode and owner.
void rewrite_agent_config_file(const sys::RootFs& fs, const std::string& machine_path,
                               const AgentRegistration& registration);

} // namespace kb::kasm

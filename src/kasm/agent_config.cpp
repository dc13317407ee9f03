#include "kasm_bootstrap/kasm/agent_config.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace kb::kasm {
namespace {

YAML::Node load(std::string_view text, const std::string& where) {
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    // e.msg only: e.what() can quote the offending line, which may hold the token.
    throw Error(ExitCode::kInstall, fmt::format("{} is not valid YAML (line {}, column {}): {}", where, e.mark.line + 1,
                                                e.mark.column + 1, e.msg));
  }
  if (!doc.IsMap()) throw Error(ExitCode::kInstall, where + " is not a YAML mapping of agent settings");
  for (const char* section : {"agent", "manager"}) {
    const YAML::Node& const_doc = doc;
    const auto node = const_doc[section];
    if (!node || !node.IsMap())
      throw Error(ExitCode::kInstall, where + " has no '" + section + "' mapping; is it Kasm's agent.app.config.yaml?");
  }
  return doc;
}

std::optional<std::string> scalar(const YAML::Node& section, const char* key) {
  const auto n = section[key];
  if (!n || !n.IsScalar()) return std::nullopt;
  return n.Scalar();
}

} // namespace

void check_agent_config(std::string_view text, const std::string& where) { load(text, where); }

std::string registration_keys() {
  return "agent.server_id, agent.public_hostname, agent.provider, agent.public_port, manager.hostnames, "
         "manager.token, manager.public_port";
}

bool agent_config_matches(std::string_view text, const AgentRegistration& r, const std::string& where) {
  const YAML::Node doc = load(text, where);
  const YAML::Node agent = doc["agent"];
  const YAML::Node manager = doc["manager"];
  if (scalar(agent, "server_id") != r.server_id || scalar(agent, "public_hostname") != r.public_hostname ||
      (!r.provider.empty() && scalar(agent, "provider") != r.provider))
    return false;
  if (scalar(agent, "public_port") != std::to_string(r.agent_public_port) ||
      scalar(manager, "public_port") != std::to_string(r.manager_public_port))
    return false;
  if (!r.manager_token || scalar(manager, "token") != r.manager_token->reveal()) return false;
  const auto hosts = manager["hostnames"];
  if (!hosts || !hosts.IsSequence() || hosts.size() != r.manager_hostnames.size()) return false;
  for (std::size_t i = 0; i < hosts.size(); ++i)
    if (!hosts[i].IsScalar() || hosts[i].Scalar() != r.manager_hostnames[i]) return false;
  return true;
}

std::string rewrite_agent_config(std::string_view text, const AgentRegistration& r, const std::string& where) {
  if (!r.manager_token || r.manager_token->empty())
    throw Error(ExitCode::kInstall, "no manager token to write into " + where);
  YAML::Node doc = load(text, where);
  doc["agent"]["server_id"] = r.server_id;
  doc["agent"]["public_hostname"] = r.public_hostname;
  if (!r.provider.empty()) doc["agent"]["provider"] = r.provider;
  // install.sh -L rewrites every public_port line, the manager's too (docs/kasm-installer.md
  // §2); the manager's port is its own here.
  doc["agent"]["public_port"] = r.agent_public_port;
  doc["manager"]["public_port"] = r.manager_public_port;
  YAML::Node hosts(YAML::NodeType::Sequence);
  for (const auto& h : r.manager_hostnames)
    hosts.push_back(h);
  doc["manager"]["hostnames"] = hosts;
  doc["manager"]["token"] = r.manager_token->reveal();
  YAML::Emitter out;
  out << doc;
  if (!out.good()) throw Error(ExitCode::kInstall, "cannot write " + where + " back as YAML: " + out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

void rewrite_agent_config_file(const sys::RootFs& fs, const std::string& machine_path, const AgentRegistration& r,
                               sys::FileOwner owner) {
  const auto text = fs.read_file(machine_path, 4u << 20);
  if (!text) throw Error(ExitCode::kInstall, machine_path + " does not exist; the installed release is incomplete");
  const auto updated = rewrite_agent_config(*text, r, machine_path);
  // The agent runs as root in its container and reads the file through the install dir
  // mount; nobody else needs the token in it.
  fs.write_file_atomic(machine_path, updated, 0600, owner);
}

} // namespace kb::kasm

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

bool agent_config_matches(std::string_view text, const AgentRegistration& r, const std::string& where) {
  const YAML::Node doc = load(text, where);
  const YAML::Node agent = doc["agent"];
  const YAML::Node manager = doc["manager"];
  if (scalar(agent, "server_id") != r.server_id || scalar(agent, "public_hostname") != r.public_hostname ||
      scalar(agent, "provider") != r.provider)
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
  doc["agent"]["provider"] = r.provider;
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

void rewrite_agent_config_file(const sys::RootFs& fs, const std::string& machine_path, const AgentRegistration& r) {
  const auto text = fs.read_file(machine_path, 4u << 20);
  if (!text) throw Error(ExitCode::kInstall, machine_path + " does not exist; the baked install is incomplete");
  const auto st = fs.stat(machine_path);
  if (!st)
    throw Error(ExitCode::kInstall,
                "cannot stat " + fs.host_path(machine_path).string() + ": " + util::errno_text(errno));
  const auto updated = rewrite_agent_config(*text, r, machine_path);
  // The agent reads this file as user kasm: keep the installer's mode and owner.
  fs.write_file_atomic(machine_path, updated, st->st_mode & 07777, sys::FileOwner{st->st_uid, st->st_gid});
}

} // namespace kb::kasm

// `kasm-bootstrap status [--wait] [--long]`: what the last run, or the one in progress,
// says in <state_dir>/status.json, with the conventions of `cloud-init status`
// (docs/platform.md, "cloud-init status"): one "status: ..." line, more with --long,
// the document itself with -o json, and an exit code per state. Reads only: it takes no
// lock, so it can watch a run that holds one.

#include "kasm_bootstrap/cli/commands.hpp"
#include "kasm_bootstrap/plan/observers.hpp"
#include "kasm_bootstrap/system/process.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/util/json_text.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <iostream>
#include <string>
#include <thread>

namespace kb::cli {
namespace {

enum class RunState { kNotStarted, kRunning, kDone, kDegraded, kError };

// cloud-init's codes for done, error and degraded; ours beyond the run's table for the two
// states it has no code for (it answers "running" with 0, which a script cannot tell from done).
int status_exit_code(RunState s) {
  switch (s) {
  case RunState::kDone: return 0;
  case RunState::kError: return 1;
  case RunState::kDegraded: return 2;
  case RunState::kRunning: return 16;
  case RunState::kNotStarted: return 17;
  }
  return 1;
}

const char* status_word(RunState s) {
  switch (s) {
  case RunState::kDone: return "done";
  case RunState::kError: return "error";
  case RunState::kDegraded: return "degraded done";
  case RunState::kRunning: return "running";
  case RunState::kNotStarted: return "not started";
  }
  return "error";
}

// Whether the run that wrote the status is still alive: its pid with the start time it
// recorded (a pid handed out again after a SIGKILL or a reboot is another process).
bool run_process_alive(const nlohmann::json& doc) {
  const long pid = doc.value("pid", 0L);
  if (pid <= 0) return false;
  const auto start = sys::process_start_time(static_cast<pid_t>(pid));
  if (!start) return false;
  const auto recorded = doc.find("pid_start_ticks");
  return recorded == doc.end() || !recorded->is_number_unsigned() || recorded->get<unsigned long long>() == *start;
}

struct StatusView {
  RunState state = RunState::kNotStarted;
  nlohmann::json doc; // status.json as written, or null
  std::string note;   // what status adds to it (a dead run), or empty
};

StatusView read_status(const sys::RootFs& fs, const std::string& state_dir) {
  const std::string machine_path = state_dir + "/" + plan::StatusFileObserver::kStatusFile;
  const std::string shown = fs.host_path(machine_path).string();
  std::optional<std::string> text;
  try {
    text = fs.read_file(machine_path, 1u << 20);
  } catch (const std::exception& e) {
    throw Error(ExitCode::kState, std::string("cannot read the status: ") + e.what());
  }
  StatusView v;
  if (!text) return v;
  if (util::json_too_deep(*text)) throw Error(ExitCode::kState, shown + " is nested too deeply to be a status file");
  v.doc = nlohmann::json::parse(*text, nullptr, false);
  if (!v.doc.is_object() || !v.doc.contains("result") || !v.doc["result"].is_string())
    throw Error(ExitCode::kState, shown + " is not a status file kasm-bootstrap wrote (no \"result\")");
  const std::string result = v.doc["result"];
  if (result == "running") {
    const long pid = v.doc.value("pid", 0L);
    if (run_process_alive(v.doc)) {
      v.state = RunState::kRunning;
    } else {
      v.state = RunState::kError;
      v.note = "status.json says running, but the run (pid " + std::to_string(pid) +
               ") is gone: killed, or the machine stopped; the next run marks it interrupted";
    }
  } else if (result == "success") {
    v.state = RunState::kDone;
    if (v.doc.contains("steps") && v.doc["steps"].is_array())
      for (const auto& s : v.doc["steps"])
        if (s.is_object() && s.value("outcome", "") == "warning") v.state = RunState::kDegraded;
  } else if (result == "failed" || result == "interrupted") {
    v.state = RunState::kError;
  } else {
    throw Error(ExitCode::kState, shown + " has an unknown result " + util::quote_for_message(result));
  }
  return v;
}

std::string text_of(const nlohmann::json& doc, const char* key) {
  if (!doc.is_object() || !doc.contains(key)) return {};
  const auto& v = doc[key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

void print_long(const StatusView& v, Output& output) {
  const auto& d = v.doc;
  for (const char* key : {"started_at", "finished_at", "pid", "exit_class", "failed_step", "error"})
    if (const auto value = text_of(d, key); !value.empty())
      output.line(fmt::format("{:<13} {}", std::string(key) + ":", util::quote_for_message(value, 300)));
  if (!v.note.empty()) output.line("detail:       " + v.note);
  if (!d.contains("steps") || !d["steps"].is_array()) return;
  output.line("steps:");
  for (const auto& s : d["steps"]) {
    if (!s.is_object()) continue;
    std::string line = fmt::format("  {:<22} {}", text_of(s, "id"), text_of(s, "outcome"));
    if (const auto ms = text_of(s, "duration_ms"); !ms.empty()) line += "  " + ms + " ms";
    if (const auto m = text_of(s, "message"); !m.empty()) line += "  " + util::quote_for_message(m, 200);
    output.line(line);
  }
}

} // namespace

int command_status(const CommonOptions& o, std::istream& in, Output& output) {
  const auto loaded = load_configuration(o, in, config::Purpose::kStatus, output, "status");
  const sys::RootFs fs(o.root);
  StatusView v = read_status(fs, loaded.config.state_dir);
  if (o.wait) {
    // As `cloud-init status --wait`: until the run is over. "Not started" is waited on too:
    // at boot the unit may not have started yet. A signal ends the wait (default action).
    bool said = false;
    while (v.state == RunState::kRunning || v.state == RunState::kNotStarted) {
      if (!said && !output.json()) std::cerr << "waiting for the run to finish...\n" << std::flush;
      said = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      v = read_status(fs, loaded.config.state_dir);
    }
  }
  const int code = status_exit_code(v.state);
  if (output.json()) {
    nlohmann::json doc{{"command", "status"}, {"status", status_word(v.state)}, {"exit_code", code}};
    if (!v.doc.is_null()) doc["run"] = v.doc;
    if (!v.note.empty()) doc["detail"] = v.note;
    output.document(doc);
    return code;
  }
  output.line(std::string("status: ") + status_word(v.state));
  if (o.long_form) print_long(v, output);
  return code;
}

} // namespace kb::cli

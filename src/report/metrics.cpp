#include "kasm_bootstrap/report/metrics.hpp"

#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/version.hpp"

#include <fmt/format.h>

namespace kb::report {
namespace {

// Label values escape backslash, double quote and newline (exposition format).
std::string label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

struct Writer {
  std::string text;
  void family(const char* name, const char* help) {
    text += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
  }
  void sample(const char* name, const std::string& labels, double value) {
    text += labels.empty() ? fmt::format("{} {}\n", name, value) : fmt::format("{}{{{}}} {}\n", name, labels, value);
  }
};

} // namespace

std::string render_metrics(const plan::RunReport* run, const kasm::HealthReport* health,
                           std::chrono::system_clock::time_point now) {
  Writer w;
  const double now_s = std::chrono::duration<double>(now.time_since_epoch()).count();
  w.family("kasm_bootstrap_info", "kasm-bootstrap build information");
  w.sample("kasm_bootstrap_info", fmt::format("version=\"{}\"", label(kVersion)), 1);
  if (run) {
    w.family("kasm_bootstrap_run_success", "1 when the last run completed successfully");
    w.sample("kasm_bootstrap_run_success", "", run->success() ? 1 : 0);
    w.family("kasm_bootstrap_run_exit_code", "exit code of the last run");
    w.sample("kasm_bootstrap_run_exit_code", "", static_cast<int>(run->exit_code));
    w.family("kasm_bootstrap_run_duration_seconds", "wall time of the last run");
    w.sample("kasm_bootstrap_run_duration_seconds", "", run->duration_ms / 1000);
    w.family("kasm_bootstrap_run_timestamp_seconds", "when the last run finished (unix time)");
    w.sample("kasm_bootstrap_run_timestamp_seconds", "", now_s);
    w.family("kasm_bootstrap_step_duration_seconds", "time spent in each step of the last run");
    for (const auto& s : run->steps)
      w.sample("kasm_bootstrap_step_duration_seconds",
               fmt::format("step=\"{}\",outcome=\"{}\"", label(s.id), plan::outcome_name(s.outcome)),
               s.duration_ms / 1000);
    w.family("kasm_bootstrap_step_success", "1 when the step is done (now, earlier, or already in place)");
    for (const auto& s : run->steps) {
      const bool ok = s.outcome == plan::Outcome::kDone || s.outcome == plan::Outcome::kResumed ||
                      s.outcome == plan::Outcome::kSatisfied;
      w.sample("kasm_bootstrap_step_success", fmt::format("step=\"{}\"", label(s.id)), ok ? 1 : 0);
    }
  }
  if (health) {
    w.family("kasm_bootstrap_healthy", "1 when every health check passed");
    w.sample("kasm_bootstrap_healthy", "", health->healthy() ? 1 : 0);
    w.family("kasm_bootstrap_health_check_ok", "1 when the health check passed");
    for (const auto& c : health->checks)
      w.sample("kasm_bootstrap_health_check_ok", fmt::format("check=\"{}\"", label(c.name)), c.ok ? 1 : 0);
    w.family("kasm_bootstrap_health_check_latency_seconds", "how long the health check took");
    for (const auto& c : health->checks)
      w.sample("kasm_bootstrap_health_check_latency_seconds", fmt::format("check=\"{}\"", label(c.name)),
               c.latency_ms / 1000);
    w.family("kasm_bootstrap_health_timestamp_seconds", "when the health checks ran (unix time)");
    w.sample("kasm_bootstrap_health_timestamp_seconds", "", now_s);
  }
  return w.text;
}

namespace {

// The metric a textfile line is about: "# HELP name ...", "# TYPE name ...", "name{...} v".
std::string_view metric_of(std::string_view line) {
  if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) line.remove_prefix(7);
  return line.substr(0, line.find_first_of("{ "));
}

bool is_run_metric(std::string_view name) {
  return name.rfind("kasm_bootstrap_run_", 0) == 0 || name.rfind("kasm_bootstrap_step_", 0) == 0;
}

} // namespace

// One file, two writers. node_exporter reads one textfile per collector pass and a
// family may appear once, so `health` cannot append; and a second file would split the
// run's and the health's gauges over two names an alert has to know. So the file is
// rewritten whole: the health families (and the build info) from this check, then every
// line of the previous file about the run (kasm_bootstrap_run_*, kasm_bootstrap_step_*,
// their HELP and TYPE included) as the run wrote it, so the run's outcome survives the
// timer's checks until the next run replaces all of it. The previous file is read
// bounded; unreadable, its run part is lost and the health part is still true.
std::string refresh_health_metrics(const sys::RootFs& fs, const std::filesystem::path& file,
                                   const kasm::HealthReport& health, std::chrono::system_clock::time_point now) {
  std::string text = render_metrics(nullptr, &health, now);
  std::optional<std::string> previous;
  try {
    previous = fs.read_file(file, 1u << 20);
  } catch (const std::exception&) {
    previous.reset(); // unreadable or too large: the health part alone is still true
  }
  if (previous) {
    std::size_t from = 0;
    while (from < previous->size()) {
      auto to = previous->find('\n', from);
      if (to == std::string::npos) to = previous->size();
      const std::string_view line(previous->data() + from, to - from);
      if (is_run_metric(metric_of(line))) text.append(line).append("\n");
      from = to + 1;
    }
  }
  write_metrics_file(fs, file, text);
  return text;
}

std::optional<kasm::HealthReport> health_from_outputs(const plan::RunReport& run) {
  for (const auto& s : run.steps) {
    if (s.id != steps::id::kVerifyHealth || s.outputs.empty()) continue;
    kasm::HealthReport report;
    for (const auto& [key, value] : s.outputs) {
      if (key.rfind("health.", 0) != 0 || key.find(".latency_ms") != std::string::npos) continue;
      kasm::HealthCheck c;
      c.name = key.substr(7);
      c.ok = value == "ok";
      c.detail = value;
      if (const auto it = s.outputs.find(key + ".latency_ms"); it != s.outputs.end()) {
        try {
          c.latency_ms = std::stod(it->second);
        } catch (const std::exception&) {
        }
      }
      report.checks.push_back(c);
    }
    if (!report.checks.empty()) return report;
  }
  // A failed verify-health leaves no outputs; an empty report still says "not healthy".
  for (const auto& s : run.steps)
    if (s.id == steps::id::kVerifyHealth && s.outcome == plan::Outcome::kFailed) return kasm::HealthReport{};
  return std::nullopt;
}

void write_metrics_file(const sys::RootFs& fs, const std::filesystem::path& file, const std::string& text) {
  fs.create_directories(file.parent_path(), 0755);
  fs.write_file_atomic(file, text, 0644);
}

void MetricsFileObserver::on_run_finished(const plan::RunReport& report) {
  try {
    const auto health = health_from_outputs(report);
    write_metrics_file(fs_, file_, render_metrics(&report, health ? &*health : nullptr));
  } catch (const std::exception& e) {
    log::warn("cannot write the metrics file {}: {}", file_.string(), e.what());
  }
}

} // namespace kb::report

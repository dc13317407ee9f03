#pragma once
// Prometheus textfile (node_exporter's textfile collector): how long each step took,
// how the run ended, and the health gauges. Written atomically (through RootFs) when the
// run ends and again by each `health` (the health timer), so the collector never reads
// half a file.

#include "kasm_bootstrap/kasm/health.hpp"
#include "kasm_bootstrap/plan/executor.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace kb::report {

// Either part may be absent (a run without health results, `health` without a run).
std::string render_metrics(const plan::RunReport* run, const kasm::HealthReport* health,
                           std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// The health results verify-health left in its outputs ("health.<check>" = "ok"), when
// it succeeded; an empty (unhealthy) report when it failed; nullopt when it did not run.
std::optional<kasm::HealthReport> health_from_outputs(const plan::RunReport& run);

// Atomically writes `text` at the machine path `file` (mode 0644), creating its directory.
void write_metrics_file(const sys::RootFs& fs, const std::filesystem::path& file, const std::string& text);

// `health` between runs: the health families (and the build info) rewritten from
// `health`, what the last run wrote about itself (kasm_bootstrap_run_*, _step_*) kept, so
// the timer's checks refresh the file without erasing the run. Returns what was written.
std::string refresh_health_metrics(const sys::RootFs& fs, const std::filesystem::path& file,
                                   const kasm::HealthReport& health,
                                   std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

class MetricsFileObserver final : public plan::Observer {
public:
  MetricsFileObserver(const sys::RootFs& fs, std::filesystem::path file) : fs_(fs), file_(std::move(file)) {}
  void on_run_finished(const plan::RunReport& report) override;

private:
  const sys::RootFs& fs_;
  std::filesystem::path file_;
};

} // namespace kb::report

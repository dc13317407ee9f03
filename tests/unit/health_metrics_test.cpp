// `health` keeps the node_exporter textfile current: the health gauges and their time
// rewritten, what the last run wrote about itself kept, never a family twice.

#include "test_support.hpp"

#include "kasm_bootstrap/report/metrics.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

using namespace kb;
using kb::test::run_binary;
using kb::test::TempDir;
namespace fs = std::filesystem;

namespace {

// metric{labels} -> how many samples carry it, and the last value.
std::map<std::string, std::pair<int, std::string>> samples_of(const std::string& text) {
  std::map<std::string, std::pair<int, std::string>> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line.front() == '#') continue;
    const auto space = line.rfind(' ');
    auto& entry = out[line.substr(0, space)];
    ++entry.first;
    entry.second = line.substr(space + 1);
  }
  return out;
}

const std::string kRunPart = "# HELP kasm_bootstrap_run_success 1 when the last run completed successfully\n"
                             "# TYPE kasm_bootstrap_run_success gauge\n"
                             "kasm_bootstrap_run_success 1\n"
                             "# HELP kasm_bootstrap_step_success 1 when the step is done\n"
                             "# TYPE kasm_bootstrap_step_success gauge\n"
                             "kasm_bootstrap_step_success{step=\"install-agent\"} 1\n"
                             "# HELP kasm_bootstrap_healthy 1 when every health check passed\n"
                             "# TYPE kasm_bootstrap_healthy gauge\n"
                             "kasm_bootstrap_healthy 0\n";

} // namespace

TEST_CASE("health metrics: a healthy check replaces the gauges and keeps the run's", "[report][health-metrics]") {
  TempDir dir;
  sys::RootFs fs(dir.path());
  const fs::path file = "/var/lib/prometheus/node-exporter/kasm_bootstrap.prom";
  fs::create_directories(dir.path() / "var/lib/prometheus/node-exporter");
  std::ofstream(dir.path() / file.relative_path()) << kRunPart;

  kasm::HealthReport healthy;
  healthy.checks = {{"kasm_agent", true, "running", 1.5}, {"manager", true, "ok", 40}};
  report::refresh_health_metrics(fs, file, healthy);
  const auto s = samples_of(kb::test::read_file(dir.path() / file.relative_path()));
  CHECK(s.at("kasm_bootstrap_healthy") == std::make_pair(1, std::string("1")));
  CHECK(s.at("kasm_bootstrap_health_check_ok{check=\"manager\"}").second == "1");
  CHECK(s.count("kasm_bootstrap_health_timestamp_seconds") == 1);
  CHECK(s.at("kasm_bootstrap_run_success") == std::make_pair(1, std::string("1")));
  CHECK(s.at("kasm_bootstrap_step_success{step=\"install-agent\"}").first == 1);
  for (const auto& [name, entry] : s)
    CHECK(entry.first == 1); // no sample twice, so node_exporter accepts the file
}

TEST_CASE("health metrics: the health command writes an unhealthy textfile", "[report][health-metrics]") {
  TempDir dir;
  const auto prom = dir.path() / "var/lib/prometheus/node-exporter/kasm_bootstrap.prom";
  const auto r = run_binary({"health", "--root", dir.path().string(), "--manager-address", "127.0.0.1",
                             "--manager-port", "9", "--block-container-metadata", "false", "--metrics-file",
                             "/var/lib/prometheus/node-exporter/kasm_bootstrap.prom"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 10);
  REQUIRE(fs::exists(prom));
  const auto s = samples_of(kb::test::read_file(prom));
  CHECK(s.at("kasm_bootstrap_healthy").second == "0");
  CHECK(s.at("kasm_bootstrap_health_check_ok{check=\"manager\"}").second == "0");
  CHECK(s.count("kasm_bootstrap_health_timestamp_seconds") == 1);
}

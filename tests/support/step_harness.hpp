#pragma once
// One step run by hand under a temporary root: a default configuration to adjust, the
// real process runner and HTTP client, and the context a step's check()/apply() take.

#include "kasm_bootstrap/config/config.hpp"
#include "kasm_bootstrap/net/http_client.hpp"
#include "kasm_bootstrap/plan/step.hpp"
#include "kasm_bootstrap/system/machine.hpp"
#include "kasm_bootstrap/system/process.hpp"

#include <atomic>
#include <filesystem>

namespace kb::test {

struct StepHarness {
  config::Config config;
  sys::ProcessRunner processes;
  net::HttpClient http;
  Machine machine;
  plan::Facts facts;
  std::atomic<bool> cancelled{false};
  explicit StepHarness(const std::filesystem::path& root) : machine{sys::RootFs(root), processes, http} {}
  plan::StepContext context() { return {config, machine, facts, cancelled}; }
};

} // namespace kb::test

// ensure-docker (fast path) under a test root, where systemd is not in charge: the step
// waits for the Docker socket to answer, up to docker_start_timeout_seconds, and fails
// naming the socket when it never does (an engine that answers at once is the fast-path
// test's case, bake_fast_path_test.cpp).

#include "step_harness.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/steps/steps.hpp"

#include <cstdint>

using namespace kb;
using namespace kb::test;

namespace {

// ensure-docker's own deadline, short enough for a test that waits it out.
constexpr std::int64_t kDeadlineSeconds = 1;

std::string apply_error(StepHarness& h) {
  h.config.docker_start_timeout_seconds = kDeadlineSeconds;
  auto step = steps::make_ensure_docker();
  REQUIRE_FALSE(step->check(h.context()).has_value()); // not answering: not already done
  try {
    step->apply(h.context());
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kDocker);
    return e.what();
  }
  return "(no error)";
}

} // namespace

TEST_CASE("ensure-docker: no socket at all fails at the deadline, naming the socket", "[bake][docker-step]") {
  TempDir root;
  StepHarness h(root.path());
  const auto message = apply_error(h);
  INFO(message);
  CHECK(message.find((root.path() / "var/run/docker.sock").string()) != std::string::npos);
  CHECK(message.find("did not answer within 1 s") != std::string::npos);
}

TEST_CASE("ensure-docker: a socket that answers with errors is not a running engine", "[bake][docker-step]") {
  TempDir root;
  std::filesystem::create_directories(root.path() / "var/run");
  FakeServer fake("fake_docker.py", {"--socket", (root.path() / "var/run/docker.sock").string(), "--mode", "500"});
  StepHarness h(root.path());
  const auto message = apply_error(h);
  INFO(message);
  CHECK(message.find("did not answer within 1 s") != std::string::npos);
}

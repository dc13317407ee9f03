// net::DockerClient against a REAL Docker Engine (Debian's dockerd, started by the test on
// a private socket), and against a broken fake for what the engine will not do on demand.

#include "docker_world.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/net/docker_client.hpp"

#include <algorithm>

using namespace kb;
using namespace kb::test;

namespace {

ExitCode code_of(const std::function<void()>& f, std::string& message) {
  try {
    f();
  } catch (const kb::Error& e) {
    message = e.what();
    return e.code();
  }
  return ExitCode::kOk;
}

} // namespace

TEST_CASE("docker: state, list, exec and its exit code against a real engine", "[docker]") {
  KB_REQUIRE_DOCKER_WORLD();
  DockerWorld world;
  world.run_proxy();
  world.run_agent({"--health-cmd", "true", "--health-interval", "1s", "--health-start-period", "0s"});
  const net::HttpClient http;
  const net::DockerClient docker(http, world.socket());

  const auto proxy = docker.inspect_container("kasm_proxy");
  REQUIRE(proxy);
  CHECK(proxy->name == "kasm_proxy");
  CHECK(proxy->running);
  CHECK(proxy->status == "running");
  CHECK(proxy->health.empty()); // the image has no health check
  CHECK(proxy->usable());
  CHECK(proxy->image == world.image());

  const auto list = docker.list_containers();
  const auto has = [&](const std::string& name) {
    return std::any_of(list.begin(), list.end(), [&](const net::ContainerSummary& s) {
      return std::find(s.names.begin(), s.names.end(), name) != s.names.end() && s.state == "running";
    });
  };
  CHECK(has("kasm_proxy"));
  CHECK(has("kasm_agent"));

  SECTION("nginx -s reload really runs in kasm_proxy") {
    const auto workers_before = world.docker({"exec", "kasm_proxy", "ps", "-o", "pid,args"});
    const auto reload = docker.exec("kasm_proxy", {"nginx", "-s", "reload"});
    CHECK(reload.exit_code == 0);
    CHECK(reload.stderr_text.find("signal process started") != std::string::npos);
    // A reload replaces the worker processes: the set of worker pids changes.
    const auto worker_pids = [&](const std::string& ps) {
      std::vector<std::string> pids;
      std::istringstream in(ps);
      std::string line;
      while (std::getline(in, line))
        if (line.find("worker process") != std::string::npos) pids.push_back(line.substr(0, line.find("nginx")));
      return pids;
    };
    std::vector<std::string> after;
    for (int i = 0; i < 50; ++i) {
      after = worker_pids(world.docker({"exec", "kasm_proxy", "ps", "-o", "pid,args"}));
      if (!after.empty() && after != worker_pids(workers_before)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK_FALSE(after.empty());
    CHECK(after != worker_pids(workers_before));
  }

  SECTION("a failing command reports its exit code, stdout and stderr") {
    const auto r = docker.exec("kasm_proxy", {"sh", "-c", "echo to-stdout; echo 'nginx: [emerg] broken' >&2; exit 3"});
    CHECK(r.exit_code == 3);
    CHECK_FALSE(r.success());
    CHECK(r.stdout_text == "to-stdout\n");
    CHECK(r.stderr_text == "nginx: [emerg] broken\n");
    const auto t = docker.exec("kasm_proxy", {"nginx", "-t", "-c", "/nonexistent.conf"});
    CHECK(t.exit_code == 1);
    CHECK(t.stderr_text.find("/nonexistent.conf") != std::string::npos);
  }

  SECTION("large interleaved output is demultiplexed completely") {
    const auto r = docker.exec("kasm_proxy", {"sh", "-c",
                                              "i=0; while [ $i -lt 3000 ]; do echo line-$i; "
                                              "echo err-$i >&2; i=$((i+1)); done"});
    CHECK(r.exit_code == 0);
    CHECK(std::count(r.stdout_text.begin(), r.stdout_text.end(), '\n') == 3000);
    CHECK(std::count(r.stderr_text.begin(), r.stderr_text.end(), '\n') == 3000);
    CHECK(r.stdout_text.rfind("line-2999\n") == r.stdout_text.size() - 10);
  }

  SECTION("health reported by the engine is read") {
    REQUIRE(world.wait_for("kasm_agent", "{{.State.Health.Status}}", "healthy"));
    const auto agent = docker.inspect_container("kasm_agent");
    REQUIRE(agent);
    CHECK(agent->health == "healthy");
    CHECK(agent->usable());
    CHECK(agent->describe() == "running, healthy");
  }

  SECTION("a stopped container is reported, and exec in it is a clear error") {
    world.docker({"stop", "-t", "1", "kasm_agent"});
    const auto agent = docker.inspect_container("kasm_agent");
    REQUIRE(agent);
    CHECK_FALSE(agent->running);
    CHECK(agent->status == "exited");
    CHECK_FALSE(agent->usable());
    CHECK(agent->describe().rfind("exited (code ", 0) == 0);
    std::string message;
    CHECK(code_of([&] { docker.exec("kasm_agent", {"true"}); }, message) == ExitCode::kDocker);
    CHECK(message.find("not running") != std::string::npos);
  }

  SECTION("a missing container is nullopt for inspect and a clear error for exec") {
    CHECK_FALSE(docker.inspect_container("kasm_nothere"));
    std::string message;
    CHECK(code_of([&] { docker.exec("kasm_nothere", {"true"}); }, message) == ExitCode::kDocker);
    CHECK(message.find("no such container") != std::string::npos);
    CHECK(code_of([&] { docker.inspect_container("bad/name"); }, message) == ExitCode::kDocker);
    CHECK(message.find("not a Docker container name") != std::string::npos);
  }
}

TEST_CASE("docker: an unhealthy container is not usable and says why", "[docker]") {
  KB_REQUIRE_DOCKER_WORLD();
  DockerWorld world;
  world.run_agent({"--health-cmd", "echo probe-says-no; false", "--health-interval", "1s", "--health-retries", "1"});
  REQUIRE(world.wait_for("kasm_agent", "{{.State.Health.Status}}", "unhealthy"));
  const net::HttpClient http;
  const net::DockerClient docker(http, world.socket());
  const auto agent = docker.inspect_container("kasm_agent");
  REQUIRE(agent);
  CHECK(agent->running);
  CHECK(agent->health == "unhealthy");
  CHECK_FALSE(agent->usable());
  CHECK(agent->describe().find("unhealthy: probe-says-no") != std::string::npos);
}

TEST_CASE("docker: a container its restart policy keeps restarting is not usable while it is up", "[docker]") {
  // Kasm's compose file gives both containers `restart: always`: one that keeps exiting
  // is "running" for a moment after each restart, which must not pass a health check.
  KB_REQUIRE_DOCKER_WORLD();
  DockerWorld world;
  world.docker({"run", "-d", "--name", "kasm_agent", "--network", "none", "--restart", "always", world.image(),
                "/bin/sh", "-c", "sleep 1; exit 3"});
  const net::HttpClient http;
  const net::DockerClient docker(http, world.socket());
  // Running, never restarted yet: nothing says it will fail.
  const auto first = docker.inspect_container("kasm_agent");
  REQUIRE(first);
  CHECK(first->restart_count == 0);
  CHECK(first->usable());
  REQUIRE(world.wait_for("kasm_agent", "{{.RestartCount}} {{.State.Running}}", "1 true"));
  const auto looping = docker.inspect_container("kasm_agent");
  REQUIRE(looping);
  INFO(looping->describe());
  CHECK(looping->running);
  CHECK(looping->restart_count >= 1);
  REQUIRE(looping->up_seconds);
  CHECK(looping->crash_looping());
  CHECK_FALSE(looping->usable());
  CHECK(looping->describe().find("crash loop") != std::string::npos);
  // A start by hand resets the count: a container we restarted ourselves is not a loop.
  world.docker({"update", "--restart", "no", "kasm_agent"});
  world.docker({"rm", "-f", "kasm_agent"});
  world.run_agent({"--restart", "always"});
  world.docker({"restart", "kasm_agent"});
  const auto restarted = docker.inspect_container("kasm_agent");
  REQUIRE(restarted);
  CHECK(restarted->restart_count == 0);
  CHECK(restarted->usable());
}

TEST_CASE("docker: a missing socket or a dead daemon is a clear error", "[docker]") {
  TempDir dir;
  const net::HttpClient http;
  std::string message;
  const net::DockerClient missing(http, dir.path() / "docker.sock");
  CHECK(code_of([&] { missing.inspect_container("kasm_proxy"); }, message) == ExitCode::kDocker);
  CHECK(message.find("does not exist (is Docker installed and running?)") != std::string::npos);
  CHECK(message.find((dir.path() / "docker.sock").string()) != std::string::npos);

  const auto file = dir.write("not-a-socket", "x");
  const net::DockerClient regular(http, file);
  CHECK(code_of([&] { regular.list_containers(); }, message) == ExitCode::kDocker);
  CHECK(message.find("is not a socket") != std::string::npos);

  // A socket file nobody listens on (the daemon died and left it behind).
  const auto stale = dir.path() / "stale.sock";
  { FakeServer fake("fake_docker.py", {"--socket", stale.string(), "--mode", "500"}); }
  if (!std::filesystem::exists(stale)) {
    // The fake removed its socket on exit; make a stale one by hand.
    must_run({"python3", "-c", "import socket; s=socket.socket(socket.AF_UNIX); s.bind('" + stale.string() + "')"});
  }
  const net::DockerClient dead(http, stale);
  CHECK(code_of([&] { dead.list_containers(); }, message) == ExitCode::kDocker);
  CHECK(message.find("nothing accepts connections") != std::string::npos);
}

TEST_CASE("docker: daemon errors and garbage replies from a fake engine", "[docker]") {
  TempDir dir;
  const net::HttpClient http;
  std::string message;
  const auto sock = [&](const std::string& name) { return (dir.path() / name).string(); };

  {
    FakeServer fake("fake_docker.py", {"--socket", sock("500.sock"), "--mode", "500"});
    const net::DockerClient docker(http, sock("500.sock"));
    CHECK(code_of([&] { docker.inspect_container("kasm_proxy"); }, message) == ExitCode::kDocker);
    CHECK(message.find("HTTP 500: fake daemon failure") != std::string::npos);
    CHECK(code_of([&] { docker.exec("kasm_proxy", {"nginx", "-s", "reload"}); }, message) == ExitCode::kDocker);
    CHECK(message.find("HTTP 500") != std::string::npos);
    CHECK(fake.log().find("POST /v1.41/containers/kasm_proxy/exec") != std::string::npos);
  }
  {
    FakeServer fake("fake_docker.py", {"--socket", sock("g.sock"), "--mode", "garbage"});
    const net::DockerClient docker(http, sock("g.sock"));
    CHECK(code_of([&] { docker.list_containers(); }, message) == ExitCode::kDocker);
    CHECK(message.find("list containers failed") != std::string::npos);
  }
  {
    FakeServer fake("fake_docker.py", {"--socket", sock("j.sock"), "--mode", "badjson"});
    const net::DockerClient docker(http, sock("j.sock"));
    CHECK(code_of([&] { docker.inspect_container("kasm_proxy"); }, message) == ExitCode::kDocker);
    CHECK(message.find("not JSON") != std::string::npos);
  }
  {
    FakeServer fake("fake_docker.py", {"--socket", sock("s.sock"), "--mode", "badstream"});
    const net::DockerClient docker(http, sock("s.sock"));
    CHECK(code_of([&] { docker.exec("kasm_proxy", {"true"}); }, message) == ExitCode::kDocker);
    CHECK(message.find("not a multiplexed raw stream") != std::string::npos);
  }
}

TEST_CASE("docker: the raw-stream demuxer handles frames split anywhere", "[docker]") {
  auto frame = [](char stream, const std::string& payload) {
    std::string f{stream, 0, 0, 0};
    const auto n = static_cast<std::uint32_t>(payload.size());
    f += static_cast<char>(n >> 24);
    f += static_cast<char>((n >> 16) & 0xff);
    f += static_cast<char>((n >> 8) & 0xff);
    f += static_cast<char>(n & 0xff);
    return f + payload;
  };
  const std::string bytes = frame(1, "hello ") + frame(2, "oops\n") + frame(1, std::string(300, 'x')) + frame(1, "");
  for (std::size_t chunk : {1u, 3u, 7u, 8u, 9u, 1000u}) {
    net::StreamDemuxer d;
    for (std::size_t i = 0; i < bytes.size(); i += chunk)
      CHECK(d.feed(std::string_view(bytes).substr(i, chunk)));
    CHECK(d.complete());
    CHECK(d.out() == "hello " + std::string(300, 'x'));
    CHECK(d.err() == "oops\n");
  }
  net::StreamDemuxer truncated;
  truncated.feed(bytes.substr(0, 10));
  CHECK_FALSE(truncated.complete());
  net::StreamDemuxer bad;
  CHECK_FALSE(bad.feed("HTTP/1.1 200 OK\r\n"));
  net::StreamDemuxer capped(16);
  capped.feed(frame(1, std::string(100, 'a') + "the-end"));
  CHECK(capped.out() == std::string(9, 'a') + "the-end");
}

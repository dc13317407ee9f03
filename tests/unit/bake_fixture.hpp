#pragma once
// A root baked by the real `kasm-bootstrap prebake`: the fake release served over HTTPS
// (release_fixture.hpp), the fake install.sh writing under the root (KASM_FAKE_ROOT).

#include "release_fixture.hpp"
#include "test_support.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>

namespace kb::test {

struct BakeFixture {
  TempDir dir;
  std::filesystem::path root = dir.path() / "root";
  TestCa ca;
  std::string sha = make_release(dir.path() / "kasm_release_1.15.0.tar.gz");
  ReleaseServer server{ca, dir.path() / "kasm_release_1.15.0.tar.gz"};

  BakeFixture() {
    std::filesystem::create_directories(root / "etc/kasm-bootstrap");
    std::filesystem::copy_file(ca.ca_cert, root / "etc/kasm-bootstrap/test-ca.pem");
  }

  // No Docker Engine in these tests: the fake installer skips its networks
  // (KASM_FAKE_DOCKER=none, tests/fakes/README.md).
  std::map<std::string, std::string> env() const {
    return {{"KASM_FAKE_ROOT", root.string()}, {"KASM_FAKE_DOCKER", "none"}};
  }
  // With a real Docker Engine linked at <root>/var/run/docker.sock (docker_world.hpp): the
  // fake's networks and compose are real, `docker compose` through tests/fakes/bin/docker.
  std::map<std::string, std::string> env_with_docker() const {
    const char* path = std::getenv("PATH");
    return {{"KASM_FAKE_ROOT", root.string()},
            {"PATH", (source_dir() / "tests/fakes/bin").string() + ":" + (path ? path : "/usr/bin:/bin")}};
  }

  // Release keys only: what the image defaults file carries at build time.
  std::vector<std::string> release_args() const {
    return {"--root",           root.string(), "--release-url", server.url(),
            "--release-sha256", sha,           "--ca-bundle",   "/etc/kasm-bootstrap/test-ca.pem"};
  }

  RunResult prebake(const std::vector<std::string>& extra = {}, bool with_docker = false) const {
    std::vector<std::string> args{"prebake"};
    const auto r = release_args();
    args.insert(args.end(), r.begin(), r.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return run_binary(args, with_docker ? env_with_docker() : env());
  }

  nlohmann::json manifest() const { return nlohmann::json::parse(read_file(root / "etc/kasm-bootstrap/bake.json")); }
  std::filesystem::path install_dir() const { return root / "opt/kasm/1.15.0"; }
  std::filesystem::path agent_yaml() const { return install_dir() / "conf/app/agent.app.config.yaml"; }

  // The fake installer's record of its latest argv, one item per line.
  std::vector<std::string> installer_argv() const {
    std::vector<std::string> out;
    std::ifstream in(root / "fake-installer/argv");
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  }
  int installer_runs() const {
    const auto text = read_file(root / "fake-installer/runs");
    return text.empty() ? 0 : std::stoi(text);
  }
};

inline std::string value_after(const std::vector<std::string>& argv, const std::string& flag) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == flag) return argv[i + 1];
  return {};
}

inline bool has_arg(const std::vector<std::string>& argv, const std::string& arg) {
  return std::find(argv.begin(), argv.end(), arg) != argv.end();
}

} // namespace kb::test

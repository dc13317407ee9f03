// Which Kasm release a kasm_release/ is (install.sh's KASM_VERSION line) and where that
// version keeps its agent configuration (docs/kasm-installer.md).

#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/release_layout.hpp"

#include <filesystem>

using namespace kb;
using kb::test::TempDir;

TEST_CASE("release layout: versions and the agent configuration path of each generation", "[release][layout]") {
  using kasm::layout_for;
  using kasm::parse_kasm_version;
  const auto path_of = [](const char* v) {
    const auto version = parse_kasm_version(v);
    REQUIRE(version);
    const auto layout = layout_for(*version);
    return layout ? layout->agent_config : std::string("refused");
  };
  CHECK(path_of("1.14.0") == "refused");
  CHECK(path_of("1.15.0") == "conf/app/agent.app.config.yaml");
  CHECK(path_of("1.16.1") == "conf/app/agent.app.config.yaml");
  CHECK(path_of("1.17.0") == "conf/app/agent/agent.app.config.yaml");
  CHECK(path_of("1.18.0-a1b2c3") == "conf/app/agent/agent.app.config.yaml");
  CHECK(path_of("1.19.0") == "refused");
  CHECK(path_of("2.0.0") == "refused");
  for (const char* bad : {"", "1.16", "1.16.x", "v1.16.0", "1.16.0 ", "1..0", "1.16.0;rm", "99999.1.1"}) {
    INFO(bad);
    CHECK_FALSE(parse_kasm_version(bad));
  }
  const auto v = parse_kasm_version("1.17.2");
  REQUIRE(v);
  CHECK(layout_for(*v)->describe() == "Kasm 1.17.2 (agent configuration conf/app/agent/agent.app.config.yaml)");
}

TEST_CASE("release layout: KASM_VERSION is an assignment at the start of a line", "[release][layout]") {
  using kasm::version_in_install_script;
  CHECK(version_in_install_script("#!/bin/bash\nset -e\nKASM_VERSION=\"1.16.0\"\nX=1\n") == "1.16.0");
  CHECK(version_in_install_script("KASM_VERSION='1.17.0'") == "1.17.0");
  CHECK(version_in_install_script("KASM_VERSION=1.18.0 # the release\n") == "1.18.0");
  CHECK_FALSE(version_in_install_script("echo KASM_VERSION=\"9.9.9\"\n"));
  CHECK_FALSE(version_in_install_script("  # KASM_VERSION=\"9.9.9\"\n"));
  CHECK_FALSE(version_in_install_script("KASM_VERSION=\"1.16.0\n"));
  CHECK_FALSE(version_in_install_script("nothing here"));
}

TEST_CASE("release layout: detection names what it looked for", "[release][layout]") {
  TempDir root;
  const sys::RootFs fs(root.path());
  const auto detect_error = [&] {
    try {
      kasm::detect_release_layout(fs, "/var/cache/r/kasm_release");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::kRelease);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(detect_error().find("install.sh does not exist") != std::string::npos);
  root.write("var/cache/r/kasm_release/install.sh", "#!/bin/bash\necho hi\n");
  CHECK(detect_error().find("no KASM_VERSION=\"x.y.z\" line in") != std::string::npos);
  root.write("var/cache/r/kasm_release/install.sh", "KASM_VERSION=\"$(cat VERSION)\"\n");
  CHECK(detect_error().find("is '$(cat VERSION)', not a version like 1.16.0") != std::string::npos);
  root.write("var/cache/r/kasm_release/install.sh", "KASM_VERSION=\"1.20.0\"\n");
  CHECK(detect_error().find("the release is Kasm 1.20.0") != std::string::npos);
  root.write("var/cache/r/kasm_release/install.sh", "KASM_VERSION=\"1.17.0\"\n");
  const auto neither = detect_error();
  CHECK(neither.find("has neither conf/app/agent.app.config.yaml (Kasm 1.15 and 1.16) nor "
                     "conf/app/agent/agent.app.config.yaml (Kasm 1.17 and later)") != std::string::npos);
  // A 1.17 version over a 1.16 tree: the two disagree, and nothing is guessed.
  root.write("var/cache/r/kasm_release/conf/app/agent.app.config.yaml", "agent: {}\nmanager: {}\n");
  const auto mixed = detect_error();
  CHECK(mixed.find("says Kasm 1.17.0, which keeps its agent configuration in conf/app/agent/agent.app.config.yaml, "
                   "but the release has conf/app/agent.app.config.yaml instead") != std::string::npos);
  root.write("var/cache/r/kasm_release/conf/app/agent/agent.app.config.yaml", "agent: {}\nmanager: {}\n");
  CHECK(kasm::detect_release_layout(fs, "/var/cache/r/kasm_release").version.text == "1.17.0");
}

TEST_CASE("release layout: the installed agent's configuration follows /opt/kasm/current", "[release][layout]") {
  TempDir root;
  const sys::RootFs fs(root.path());
  CHECK_FALSE(kasm::installed_agent_config(fs));
  std::filesystem::create_directories(root.path() / "opt/kasm/1.18.0");
  // Kasm's installer links with an absolute target; the version is its last component.
  std::filesystem::create_symlink("/opt/kasm/1.18.0", root.path() / "opt/kasm/current");
  CHECK(kasm::installed_agent_config(fs) == "/opt/kasm/current/conf/app/agent/agent.app.config.yaml");
  std::filesystem::remove(root.path() / "opt/kasm/current");
  std::filesystem::create_symlink("1.16.0", root.path() / "opt/kasm/current");
  CHECK(kasm::installed_agent_config(fs) == "/opt/kasm/current/conf/app/agent.app.config.yaml");
  std::filesystem::remove(root.path() / "opt/kasm/current");
  std::filesystem::create_symlink("/opt/kasm/develop", root.path() / "opt/kasm/current");
  CHECK_FALSE(kasm::installed_agent_config(fs));
}

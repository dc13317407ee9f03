// `kasm-bootstrap prebake` (the real binary) against the HTTPS release server and the
// fake installer: what it passes to install.sh, the manifest it writes, the baked nginx
// key it removes, the throw-away token it never shows, and re-runs that do nothing.

#include "bake_fixture.hpp"

#include "kasm_bootstrap/kasm/installer.hpp"

#include <sys/stat.h>

using namespace kb;
using namespace kb::test;
namespace fs = std::filesystem;

TEST_CASE("prebake: install.sh -D with placeholders, then the manifest", "[bake][prebake]") {
  BakeFixture f;
  const auto images = f.root / "var/lib/kasm-images/service_images.tar.gz";
  fs::create_directories(images.parent_path());
  // An offline service images tarball as install.sh -s reads it (make_release.py).
  make_release(f.dir.path() / "unused.tar.gz", {"--service-images", images.string()});

  const auto r = f.prebake({"--service-images", "/var/lib/kasm-images/service_images.tar.gz", "--output", "json"});
  INFO(r.out + r.err);
  REQUIRE(r.exit_code == 0);
  const auto report = nlohmann::json::parse(r.out);
  CHECK(report["command"] == "prebake");
  CHECK(f.server.gets().size() == 1);

  const auto argv = f.installer_argv();
  CHECK(has_arg(argv, "-D"));
  CHECK(has_arg(argv, "-N"));
  CHECK(has_arg(argv, "-H"));
  CHECK(value_after(argv, "-S") == "agent");
  CHECK(value_after(argv, "-i") == "00000000-0000-0000-0000-000000000000");
  CHECK(value_after(argv, "-p") == kasm::kPlaceholderAddress);
  CHECK(value_after(argv, "-m") == kasm::kPlaceholderManager);
  CHECK(value_after(argv, "-s") == images.string());
  const auto token = value_after(argv, "-M");
  REQUIRE(token.rfind("placeholder-", 0) == 0);
  CHECK(token.size() == std::string("placeholder-").size() + 32);

  const auto m = f.manifest();
  CHECK(m["format"] == 1);
  CHECK(m["release_version"] == "1.15.0");
  CHECK(m["release_sha256"] == f.sha);
  CHECK(m["release_url"] == f.server.url());
  CHECK(m["install_dir"] == "/opt/kasm/1.15.0");
  CHECK(m["agent_config"] == "/opt/kasm/1.15.0/conf/app/agent.app.config.yaml");
  CHECK(m["service_images"] == "/var/lib/kasm-images/service_images.tar.gz");
  CHECK(m["baked_cert_sha256"].get<std::string>().size() == 64);
  CHECK(m["nginx_key_removed"] == true);
  CHECK(m["kasm_bootstrap_version"].get<std::string>().size() > 0);
  CHECK(m["baked_at"].get<std::string>().size() == 20);
  struct stat st {};
  REQUIRE(::stat((f.root / "etc/kasm-bootstrap/bake.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);

  // No image may ship a usable shared nginx key.
  CHECK_FALSE(fs::exists(f.install_dir() / "certs/kasm_nginx.key"));
  CHECK(fs::exists(f.install_dir() / "certs/kasm_nginx.crt"));

  // The throw-away token reaches install.sh and nothing else we print or keep.
  CHECK(r.out.find(token) == std::string::npos);
  CHECK(r.err.find(token) == std::string::npos);
  const auto log = read_file(f.root / "var/lib/kasm-bootstrap/prebake/kasm-bootstrap.log");
  CHECK(log.find("install.sh: Setting Role as agent") != std::string::npos);
  CHECK(log.find(token) == std::string::npos);
  CHECK(read_file(f.root / "etc/kasm-bootstrap/bake.json").find(token) == std::string::npos);

  SECTION("a second prebake does nothing") {
    const auto again = f.prebake();
    INFO(again.out + again.err);
    CHECK(again.exit_code == 0);
    CHECK(f.installer_runs() == 1);
    CHECK(f.server.gets().size() == 1);
  }
}

TEST_CASE("prebake: dry run shows the plan and changes nothing", "[bake][prebake]") {
  BakeFixture f;
  const auto r = f.prebake({"--dry-run"});
  INFO(r.out + r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* s : {"fetch-release", "wait-package-locks", "bake-release", "-D", "-N", kasm::kPlaceholderManager,
                        "/etc/kasm-bootstrap/bake.json", "kasm_nginx.key"})
    CHECK(r.out.find(s) != std::string::npos);
  CHECK(r.out.find("<random placeholder>") != std::string::npos); // the token is drawn at apply time
  CHECK_FALSE(fs::exists(f.root / "etc/kasm-bootstrap/bake.json"));
  CHECK_FALSE(fs::exists(f.root / "fake-installer"));
  CHECK(f.server.gets().empty());
}

TEST_CASE("prebake: needs only the release keys, and refuses a missing service images file", "[bake][prebake]") {
  BakeFixture f;
  const auto no_release = run_binary({"prebake", "--root", f.root.string(), "--dry-run"}, f.env());
  CHECK(no_release.exit_code == 3);
  CHECK(no_release.err.find("release_url") != std::string::npos);
  CHECK(no_release.err.find("release_sha256") != std::string::npos);
  CHECK(no_release.err.find("server_id") == std::string::npos);
  CHECK(no_release.err.find("manager_token") == std::string::npos);

  const auto missing = f.prebake({"--service-images", "/srv/nothing-here.tar.gz"});
  INFO(missing.out + missing.err);
  CHECK(missing.exit_code == 8);
  CHECK((missing.out + missing.err).find("service_images /srv/nothing-here.tar.gz does not exist") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(f.root / "etc/kasm-bootstrap/bake.json"));
  CHECK(f.installer_runs() == 0);
}

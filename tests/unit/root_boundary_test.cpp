// The root boundary: --root is a directory the kernel resolves in (openat2
// RESOLVE_IN_ROOT), not a string prefix. A symlink inside the tree resolves inside it, the
// way it would on the machine; one that leads to nothing inside is refused; nothing is
// ever read from, written to or created outside the root.

#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

using kb::test::TempDir;
namespace fs = std::filesystem;

namespace {

// Everything directly under `dir`, for "nothing landed here" checks.
std::vector<std::string> boundary_entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  return names;
}

} // namespace

TEST_CASE("root boundary: absolute and .. symlinks resolve inside the root", "[rootfs][boundary]") {
  TempDir root;
  const kb::sys::RootFs rootfs(root.path());
  root.write("srv/state/keep", "inside");
  // The machine's own view: /var/lib/kasm-bootstrap -> /srv/state (absolute), and a
  // relative link that climbs above "/" (it stops at "/", as on the machine).
  fs::create_directories(root.path() / "var/lib");
  fs::create_symlink("/srv/state", root.path() / "var/lib/kasm-bootstrap");
  fs::create_symlink("../../../../../../../../srv/state", root.path() / "var/lib/climbing");

  CHECK(rootfs.host_path("/var/lib/kasm-bootstrap/state.json") == root.path() / "srv/state/state.json");
  CHECK(rootfs.host_path("/var/lib/climbing") == root.path() / "srv/state");
  CHECK(rootfs.read_file("/var/lib/climbing/keep") == "inside");

  rootfs.write_file_atomic("/var/lib/kasm-bootstrap/state.json", "{}", 0600);
  CHECK(kb::test::read_file(root.path() / "srv/state/state.json") == "{}");
  rootfs.create_directories("/var/lib/kasm-bootstrap/sub/dir", 0700);
  CHECK(fs::is_directory(root.path() / "srv/state/sub/dir"));
  CHECK(rootfs.list_directory("/var/lib/kasm-bootstrap") == std::vector<std::string>{"keep", "state.json", "sub"});
  // The link itself is still there, and read as stored.
  CHECK(rootfs.read_link("/var/lib/kasm-bootstrap") == fs::path("/srv/state"));
  CHECK(rootfs.stat("/var/lib/kasm-bootstrap", kb::sys::FollowSymlinks::kNo).has_value());
  CHECK(S_ISLNK(rootfs.stat("/var/lib/kasm-bootstrap", kb::sys::FollowSymlinks::kNo)->st_mode));
  CHECK(S_ISDIR(rootfs.stat("/var/lib/kasm-bootstrap")->st_mode));
}

TEST_CASE("root boundary: a symlink that points out of the root is refused, nothing lands outside",
          "[rootfs][boundary][hostile]") {
  TempDir root;
  TempDir outside;
  outside.write("shadow", "OUTSIDE-CONTENT");
  const kb::sys::RootFs rootfs(root.path());
  fs::create_directories(root.path() / "var/lib");
  fs::create_directories(root.path() / "var/cache");
  fs::create_directories(root.path() / "etc");
  // Each the way an attacker (or a careless image build) would plant it: the state
  // dir, the release cache, the swap directory, and a file link to a host secret.
  fs::create_symlink(outside.path(), root.path() / "var/lib/kasm-bootstrap");
  fs::create_symlink("../../.." + outside.path().string(), root.path() / "var/cache/kasm-bootstrap");
  fs::create_symlink(outside.path(), root.path() / "swapdir");
  fs::create_symlink(outside.path() / "shadow", root.path() / "etc/token");

  SECTION("resolving a path through it names the link and refuses") {
    CHECK_THROWS_AS(rootfs.host_path("/var/lib/kasm-bootstrap/state.json"), kb::sys::RootEscape);
    CHECK_THROWS_WITH(rootfs.host_path("/swapdir/kasm.swap"),
                      Catch::Contains((root.path() / "swapdir").string()) && Catch::Contains("refused"));
    CHECK_THROWS_AS(rootfs.host_path("/var/cache/kasm-bootstrap/release.tar.gz"), kb::sys::RootEscape);
  }
  SECTION("writes, directories, opens and removals are refused") {
    CHECK_THROWS_AS(rootfs.write_file_atomic("/var/lib/kasm-bootstrap/state.json", "{}", 0600), std::exception);
    CHECK_THROWS_AS(rootfs.create_directories("/var/cache/kasm-bootstrap/extract", 0700), kb::sys::RootEscape);
    CHECK_FALSE(rootfs.open_file("/var/lib/kasm-bootstrap/run.lock", O_RDWR | O_CREAT));
    CHECK_NOTHROW(rootfs.remove("/swapdir/shadow"));
    CHECK_FALSE(rootfs.open_file("/etc/token", O_RDONLY)); // O_NOFOLLOW on the last link
  }
  SECTION("reads see nothing of the outside") {
    CHECK_FALSE(rootfs.read_file("/etc/token").has_value());
    CHECK_FALSE(rootfs.read_file("/var/lib/kasm-bootstrap/shadow").has_value());
    CHECK_FALSE(rootfs.exists("/swapdir/shadow"));
    CHECK_FALSE(rootfs.stat("/swapdir/shadow").has_value());
    CHECK(rootfs.list_directory("/swapdir").empty());
  }
  CHECK(boundary_entries(outside.path()) == std::vector<std::string>{"shadow"});
  CHECK(kb::test::read_file(outside.path() / "shadow") == "OUTSIDE-CONTENT");
}

TEST_CASE("root boundary: a final symlink is replaced by an atomic write, never written through",
          "[rootfs][boundary][hostile]") {
  TempDir root;
  TempDir outside;
  const auto target = outside.write("precious", "keep me");
  const kb::sys::RootFs rootfs(root.path());
  fs::create_directories(root.path() / "etc/kasm");
  fs::create_symlink(target, root.path() / "etc/kasm/agent.yaml");
  rootfs.write_file_atomic("/etc/kasm/agent.yaml", "new", 0600);
  CHECK(kb::test::read_file(target) == "keep me");
  CHECK(fs::is_regular_file(fs::symlink_status(root.path() / "etc/kasm/agent.yaml")));
  CHECK(kb::test::read_file(root.path() / "etc/kasm/agent.yaml") == "new");
}

TEST_CASE("root boundary: run and plan refuse a state directory that leads out of the root",
          "[rootfs][boundary][cli]") {
  TempDir root;
  TempDir outside;
  fs::create_directories(root.path() / "var/lib");
  fs::create_symlink(outside.path(), root.path() / "var/lib/kasm-bootstrap");
  root.write("etc/kasm-bootstrap/config.json",
             R"({"server_id":"3f6c2a4e-9b1d-4c57-a8e2-6d0f1b7c9e21","manager_address":"127.0.0.1",)"
             R"("manager_token":"BOUNDARY-token-81c4f","release_url":"https://127.0.0.1:9/kasm_release.tar.gz",)"
             R"("release_sha256":")" +
                 std::string(64, 'a') + R"("})");
  for (const std::string command : {"run", "plan"}) {
    const auto r = kb::test::run_binary({command, "--root", root.path().string()});
    INFO(command << ": " << r.err);
    CHECK(r.exit_code == static_cast<int>(kb::ExitCode::kState));
    CHECK(r.err.find((root.path() / "var/lib/kasm-bootstrap").string()) != std::string::npos);
    CHECK(r.err.find("refused") != std::string::npos);
    CHECK(r.err.find("BOUNDARY-token") == std::string::npos);
    CHECK(boundary_entries(outside.path()).empty());
  }
}

// Extraction of release tarballs built by tests/fakes/make_release.py, including hostile
// ones: each is refused as a whole and nothing lands outside (or inside) the target.

#include "release_fixture.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/release_extract.hpp"

#include <sys/mount.h>
#include <sys/stat.h>

using namespace kb;
using namespace kb::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> tree(const fs::path& dir) {
  std::vector<std::string> names;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it)
    names.push_back(it->path().lexically_relative(dir).string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string extract_error(const fs::path& archive, const fs::path& target) {
  try {
    kasm::extract_tar_gz(archive, target);
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kRelease);
    return e.what();
  }
  return "(no error)";
}

} // namespace

TEST_CASE("release extract: a release unpacks into a fresh directory", "[release][extract]") {
  TempDir work;
  const auto archive = work.path() / "release.tar.gz";
  make_release(archive);
  const auto target = work.path() / "unpacked";
  const auto r = kasm::extract_tar_gz(archive, target);
  CHECK(r.dir == target);
  const auto script = target / "kasm_release/install.sh";
  REQUIRE(fs::is_regular_file(script));
  CHECK((fs::status(script).permissions() & fs::perms::owner_exec) != fs::perms::none);
  CHECK(read_file(script).find("\nKASM_VERSION=\"1.15.0\"\n") != std::string::npos);
  CHECK(fs::is_regular_file(target / "kasm_release/bin/start"));
  CHECK(fs::is_regular_file(target / "kasm_release/conf/app/agent.app.config.yaml"));
  // The release's one relative symlink stays a symlink.
  CHECK(fs::read_symlink(target / "kasm_release/LICENSE.txt") == "licenses/LICENSE.txt");
  // Only the release's tree, under its one top directory.
  const auto all = tree(work.path());
  CHECK(all.size() > r.entries); // the archive names files; their parent directories are made too
  for (const auto& p : all)
    CHECK((p == "release.tar.gz" || p == "unpacked" || p.rfind("unpacked/kasm_release", 0) == 0));
}

TEST_CASE("release extract: hostile entries are refused and nothing is written", "[release][extract]") {
  TempDir outer;
  const auto work = outer.path() / "a" / "b";
  fs::create_directories(work);
  const auto archive = work / "release.tar.gz";
  const auto abs_name = (outer.path() / "abs-evil.txt").string();

  struct Case {
    std::string kind;
    std::string entry;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"dotdot", "kasm_release/../../evil.txt", "'..' in the path"},
      {"abs-path", abs_name, "absolute path"},
      {"abs-symlink", "kasm_release/etc", "symlink to '/etc' points outside the release"},
      {"escape-symlink", "kasm_release/up", "symlink to '../../..' points outside the release"},
      // One level above the top is as much an escape as two.
      {"escape-one", "kasm_release/up", "symlink to '../..' points outside the release"},
      {"hardlink-dotdot", "kasm_release/hl", "hard link to 'kasm_release/../../evil.txt': '..' in the path"},
      {"hardlink-abs", "kasm_release/hl", "hard link to '" + abs_name + "': absolute path"},
      {"through-symlink", "kasm_release/link/evil.txt", "symlink"},
  };
  for (const auto& c : cases) {
    SECTION(c.kind) {
      make_release(archive, {"--evil", c.kind, "--abs-name", abs_name});
      const auto message = extract_error(archive, work / "unpacked");
      INFO(message);
      CHECK(message.find("'" + c.entry + "'") != std::string::npos);
      CHECK(message.find(c.reason) != std::string::npos);
      // Only the archive remains: no target, no temporary tree, nothing above it.
      CHECK(tree(outer.path()) == std::vector<std::string>{"a", "a/b", "a/b/release.tar.gz"});
    }
  }
}

TEST_CASE("release extract: setuid and setgid bits are dropped, hard links and links to the top are kept",
          "[release][extract]") {
  TempDir work;
  const auto archive = work.path() / "release.tar.gz";
  make_release(archive, {"--special"});
  const auto target = work.path() / "unpacked";
  kasm::extract_tar_gz(archive, target);
  const auto mode = [&](const char* rel) {
    struct stat st {};
    REQUIRE(::lstat((target / rel).c_str(), &st) == 0);
    return st.st_mode & 07777;
  };
  // The archive says 04755 and 02755; a downloaded release gets no privilege bits.
  CHECK(mode("kasm_release/bin/suid") == 0755);
  CHECK(mode("kasm_release/bin/sgid") == 0755);
  CHECK(mode("kasm_release/install.sh") == 0755);
  // A hard link inside the tree is one inode with its target.
  struct stat a {
  }, b{};
  REQUIRE(::stat((target / "kasm_release/bin/hard").c_str(), &a) == 0);
  REQUIRE(::stat((target / "kasm_release/install.sh").c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);
  CHECK(a.st_nlink == 2);
  // conf/top -> ../.. names the top of the tree: inside, so kept.
  CHECK(fs::read_symlink(target / "kasm_release/conf/top") == "../..");
}

TEST_CASE("release extract: an existing target or a corrupt archive is refused", "[release][extract]") {
  TempDir work;
  const auto archive = work.path() / "release.tar.gz";
  make_release(archive, {"--pad", "200000"});
  fs::create_directories(work.path() / "there");
  CHECK(extract_error(archive, work.path() / "there").find("already exists") != std::string::npos);

  const auto content = read_file(archive);
  const auto truncated = work.path() / "truncated.tar.gz";
  work.write("truncated.tar.gz", content.substr(0, content.size() / 2));
  const auto message = extract_error(truncated, work.path() / "unpacked");
  CHECK(message.find("cannot extract " + truncated.string()) != std::string::npos);
  CHECK_FALSE(fs::exists(work.path() / "unpacked"));
  CHECK(tree(work.path()) == std::vector<std::string>{"release.tar.gz", "there", "truncated.tar.gz"});

  work.write("not-a-tarball.tar.gz", "hello, this is text\n");
  CHECK(extract_error(work.path() / "not-a-tarball.tar.gz", work.path() / "x").find("cannot extract") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(work.path() / "x"));
}

TEST_CASE("release extract: the unpacked size comes from the gzip trailer", "[release][extract]") {
  TempDir work;
  const auto archive = work.path() / "release.tar.gz";
  make_release(archive, {"--pad", "300000"});
  const auto r = run_process({"sh", "-c", "gzip -dc '" + archive.string() + "' | wc -c"});
  CHECK(kasm::estimated_unpacked_size(archive) == std::stoull(r.out));
}

TEST_CASE("release extract: too little disk space is reported before anything is written", "[release][extract]") {
  if (!running_as_root()) {
    KB_SKIP("needs root to mount a small tmpfs");
  }
  TempDir work;
  const auto archive = work.path() / "release.tar.gz";
  make_release(archive, {"--pad", std::to_string(3 << 20)});
  const auto small = work.path() / "small";
  fs::create_directories(small);
  must_run({"mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", small.string()});
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{small};
  const auto message = extract_error(archive, small / "unpacked");
  CHECK(message.find("not enough disk space in " + small.string()) != std::string::npos);
  CHECK(fs::is_empty(small));
}

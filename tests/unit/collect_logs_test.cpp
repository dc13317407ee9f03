// `kasm-bootstrap collect-logs`: the real binary against a temp root, its tarball read
// back with libarchive's read API: the members under one top directory (regular, 0600,
// a sane mtime), the token masked in every member wherever it was echoed (from the
// configuration, and from the installed agent's configuration alone), a big log kept by
// its end and cut at a line start, hostile files skipped with a reason, the journal
// through a journalctl on PATH (or its absence), and a destination that exists or cannot
// be written refused with nothing left behind.

#include "test_support.hpp"

#include "kasm_bootstrap/version.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

using kb::test::run_binary;
using kb::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kCollectToken = "COLLECT-token-5d1e9a7c3b";
const std::string kCollectAgentToken = "AGENT-only-token-8f2b4c6d";

void write_collect_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// A root like an instance after a run: state files, cloud-init's logs, an installed
// Kasm 1.18 agent whose configuration holds kCollectAgentToken. Both tokens are echoed
// into our log and cloud-init's output.
void make_collect_instance(const fs::path& root) {
  write_collect_file(root / "var/lib/kasm-bootstrap/status.json", R"({"result":"success"})");
  write_collect_file(root / "var/lib/kasm-bootstrap/state.json", R"({"steps":{}})");
  write_collect_file(root / "var/lib/kasm-bootstrap/kasm-bootstrap.log",
                     "I run with token " + kCollectToken + "\nagent " + kCollectAgentToken + " registered\n");
  write_collect_file(root / "var/log/cloud-init-output.log",
                     "+ echo " + kCollectToken + "\n+ agent token " + kCollectAgentToken + "\n");
  write_collect_file(root / "var/log/cloud-init.log", "cloud-init ran\n");
  write_collect_file(root / "etc/kasm-bootstrap/bake.json", R"({"kasm_version":"1.18.0"})");
  write_collect_file(root / "opt/kasm/1.18.0/conf/app/agent/agent.app.config.yaml",
                     "agent:\n  server_id: x\nmanager:\n  token: " + kCollectAgentToken +
                         "\n  hostnames: [m.example]\n");
  fs::create_directory_symlink("/opt/kasm/1.18.0", root / "opt/kasm/current");
}

struct CollectedEntry {
  std::string path;
  mode_t type = 0;
  mode_t perm = 0;
  std::time_t mtime = 0;
  std::string text;
};

struct CollectArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

// Every entry of the .tar.gz, in order, read with libarchive (gzip + tar only).
std::vector<CollectedEntry> read_collected_entries(const fs::path& file) {
  std::unique_ptr<archive, CollectArchiveFree> a(archive_read_new());
  REQUIRE(a);
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  REQUIRE(archive_read_open_filename(a.get(), file.c_str(), 1 << 16) == ARCHIVE_OK);
  std::vector<CollectedEntry> out;
  archive_entry* e = nullptr;
  int rc = 0;
  while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    CollectedEntry c{archive_entry_pathname(e),
                     archive_entry_filetype(e),
                     static_cast<mode_t>(archive_entry_perm(e)),
                     archive_entry_mtime(e),
                     {}};
    char buf[65536];
    la_ssize_t n = 0;
    while ((n = archive_read_data(a.get(), buf, sizeof buf)) > 0)
      c.text.append(buf, static_cast<std::size_t>(n));
    REQUIRE(n == 0);
    out.push_back(std::move(c));
  }
  INFO(archive_error_string(a.get()));
  REQUIRE(rc == ARCHIVE_EOF);
  return out;
}

// Member name (below the top directory) -> text; every entry checked to be one regular
// 0600 file with a sane mtime under the one top directory kasm-bootstrap-logs-<...>/.
std::map<std::string, std::string> collected_members(const fs::path& file) {
  const auto entries = read_collected_entries(file);
  REQUIRE_FALSE(entries.empty());
  const auto top = entries.front().path.substr(0, entries.front().path.find('/') + 1);
  CHECK(top.rfind("kasm-bootstrap-logs-", 0) == 0);
  std::map<std::string, std::string> members;
  const auto now = std::time(nullptr);
  for (const auto& e : entries) {
    INFO(e.path);
    REQUIRE(e.path.rfind(top, 0) == 0);
    const auto name = e.path.substr(top.size());
    CHECK(name.find('/') == std::string::npos);
    CHECK(e.type == AE_IFREG);
    CHECK(e.perm == 0600);
    CHECK(e.mtime > 1577836800); // 2020-01-01
    CHECK(e.mtime <= now + 86400);
    CHECK(members.emplace(name, e.text).second);
  }
  return members;
}

bool collect_has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

void check_no_token_in(const std::map<std::string, std::string>& members) {
  for (const auto& [name, text] : members) {
    INFO(name);
    CHECK_FALSE(collect_has(text, kCollectToken));
    CHECK_FALSE(collect_has(text, kCollectAgentToken));
  }
}

std::size_t entries_in(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

} // namespace

TEST_CASE("collect-logs: one tarball of the instance's logs, every token masked", "[cli][collect-logs]") {
  TempDir dir;
  const auto root = dir.path() / "root";
  make_collect_instance(root);
  const auto archive = dir.path() / "logs.tar.gz";
  const auto r = run_binary({"collect-logs", "--root", root.string(), "--archive", archive.string()},
                            {{"KASM_BOOTSTRAP_MANAGER_TOKEN", kCollectToken}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(collect_has(r.out, "wrote " + archive.string()));
  CHECK(collect_has(r.out, "  cloud-init-output.log    included\n"));
  CHECK(collect_has(r.out, "  effective.json           skipped: not present\n"));
  CHECK_FALSE(collect_has(r.out + r.err, kCollectToken));
  struct stat st {};
  REQUIRE(::stat(archive.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  const auto members = collected_members(archive);
  for (const auto* name : {"MANIFEST.txt", "status.json", "state.json", "kasm-bootstrap.log", "bake.json",
                           "cloud-init.log", "cloud-init-output.log"})
    CHECK(members.count(name) == 1);
  CHECK(members.count("effective.json") == 0);
  CHECK(members.count("journal.txt") == 0);
  check_no_token_in(members);
  CHECK(members.at("kasm-bootstrap.log") == "I run with token ****\nagent **** registered\n");
  CHECK(members.at("cloud-init-output.log") == "+ echo ****\n+ agent token ****\n");
  CHECK(members.at("status.json") == R"({"result":"success"})");
  const auto& manifest = members.at("MANIFEST.txt");
  CHECK(collect_has(manifest, "journal.txt: skipped (--root is not /)"));
  CHECK(collect_has(manifest, "effective.json: skipped (not present)"));
  CHECK(collect_has(manifest, "cloud-init.log: included"));
  CHECK(collect_has(manifest, "never collected: the instance user-data"));
  CHECK(collect_has(manifest, "configuration: loaded"));
  // Only the archive is beside the root: the temporary file is gone.
  CHECK(entries_in(dir.path()) == 2);
}

TEST_CASE("collect-logs: the agent's token is masked with no configuration given; -o json", "[cli][collect-logs]") {
  TempDir dir;
  const auto root = dir.path() / "root";
  make_collect_instance(root);
  const auto archive = dir.path() / "logs.tar.gz";
  const auto r = run_binary({"collect-logs", "--root", root.string(), "-a", archive.string(), "-o", "json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["schema_version"] == kb::kSchemaVersion);
  CHECK(doc["command"] == "collect-logs");
  CHECK(doc["archive"] == archive.string());
  std::map<std::string, nlohmann::json> listed;
  for (const auto& m : doc["members"])
    listed[m["name"].get<std::string>()] = m;
  CHECK(listed.at("cloud-init-output.log")["included"] == true);
  CHECK(listed.at("MANIFEST.txt")["included"] == true);
  CHECK(listed.at("journal.txt")["included"] == false);
  CHECK(listed.at("journal.txt")["reason"] == "--root is not /");
  CHECK(listed.at("effective.json")["reason"] == "not present");
  const auto members = collected_members(archive);
  CHECK(members.size() == 7); // the listed ones that are included, and only those
  for (const auto& [name, item] : listed)
    CHECK(members.count(name) == (item["included"] == true ? 1U : 0U));
  CHECK(members.at("cloud-init-output.log") == "+ echo " + kCollectToken + "\n+ agent token ****\n");
  CHECK_FALSE(collect_has(r.out, kCollectAgentToken));
  for (const auto& [name, text] : members)
    CHECK_FALSE(collect_has(text, kCollectAgentToken));
}

TEST_CASE("collect-logs: the configuration's state_dir is used; a broken one still collects, one JSON document",
          "[cli][collect-logs]") {
  TempDir dir;
  const auto root = dir.path() / "root";
  make_collect_instance(root);
  write_collect_file(root / "srv/kb-state/status.json", R"({"result":"failed"})");

  const auto moved = dir.path() / "moved.tar.gz";
  const auto r = run_binary({"collect-logs", "--root", root.string(), "-a", moved.string()},
                            {{"KASM_BOOTSTRAP_STATE_DIR", "/srv/kb-state"}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto members = collected_members(moved);
  CHECK(members.at("status.json") == R"({"result":"failed"})");
  CHECK(members.count("kasm-bootstrap.log") == 0);

  const auto config = dir.write("broken.json", "{ not json");
  const auto broken = dir.path() / "broken.tar.gz";
  const auto b = run_binary(
      {"collect-logs", "--root", root.string(), "--config", config.string(), "-a", broken.string(), "-o", "json"});
  INFO(b.out << b.err);
  REQUIRE(b.exit_code == 0);
  const auto doc = nlohmann::json::parse(b.out); // throws on a second document
  CHECK(collect_has(doc["configuration"].get<std::string>(), "not loaded"));
  const auto fallback = collected_members(broken);
  CHECK(fallback.at("status.json") == R"({"result":"success"})"); // the default state_dir
  CHECK(collect_has(fallback.at("MANIFEST.txt"), "configuration: not loaded"));
  CHECK(fallback.at("cloud-init-output.log") == "+ echo " + kCollectToken + "\n+ agent token ****\n");
}

TEST_CASE("collect-logs: a big log keeps its last 8 MiB from a line start, no half token shown",
          "[cli][collect-logs]") {
  TempDir dir;
  const auto root = dir.path() / "root";
  make_collect_instance(root);
  // The cut (8 MiB before the end) falls in the middle of the token: the kept part must
  // not start with the token's second half, which the redactor cannot recognise.
  constexpr std::size_t kKeep = std::size_t{8} << 20;
  const std::string head = "HEAD-LINE\nthe token " + kCollectAgentToken.substr(0, 10);
  const std::string tail_of_token = kCollectAgentToken.substr(10);
  std::string rest = tail_of_token + " was here\n";
  const std::string filler(99, 'x');
  while (rest.size() + filler.size() + 1 < kKeep - 64)
    rest += filler + "\n";
  rest += std::string(kKeep - rest.size() - 11, 'y') + "\nTAIL-LINE\n";
  REQUIRE(rest.size() == kKeep);
  write_collect_file(root / "var/lib/kasm-bootstrap/kasm-bootstrap.log", head + rest);

  const auto archive = dir.path() / "logs.tar.gz";
  const auto r = run_binary({"collect-logs", "--root", root.string(), "-a", archive.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(collect_has(r.out, "kasm-bootstrap.log       included (last 8 MiB"));
  const auto members = collected_members(archive);
  const auto& log = members.at("kasm-bootstrap.log");
  CHECK(log.size() < kKeep);
  CHECK(log.size() > kKeep - 200);
  CHECK(log.rfind(filler + "\n", 0) == 0); // starts at a whole line
  CHECK(collect_has(log, "\nTAIL-LINE\n"));
  CHECK_FALSE(collect_has(log, tail_of_token));
  CHECK_FALSE(collect_has(log, "HEAD-LINE"));
  CHECK(collect_has(members.at("MANIFEST.txt"), "kasm-bootstrap.log: included (last 8 MiB"));
}

TEST_CASE("collect-logs: a FIFO, a symlink out of the root and a directory are skipped with a reason",
          "[cli][collect-logs][hostile]") {
  TempDir dir;
  const auto root = dir.path() / "root";
  fs::create_directories(root / "var/log");
  fs::create_directories(root / "var/lib/kasm-bootstrap/state.json"); // a directory in a file's place
  write_collect_file(root / "var/lib/kasm-bootstrap/status.json", "{}");
  REQUIRE(::mkfifo((root / "var/log/cloud-init.log").c_str(), 0600) == 0);
  write_collect_file(dir.path() / "outside-secret.txt", "OUTSIDE-THE-ROOT\n");
  fs::create_symlink(dir.path() / "outside-secret.txt", root / "var/log/cloud-init-output.log");
  fs::create_symlink("../../../../outside-secret.txt", root / "var/lib/kasm-bootstrap/kasm-bootstrap.log");
  const auto archive = dir.path() / "logs.tar.gz";
  // A FIFO nobody writes to: a blocking open or read would hang here until run_process's
  // deadline fails the test.
  const auto r = run_binary({"collect-logs", "--root", root.string(), "-a", archive.string()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(collect_has(r.out, "cloud-init.log           skipped: is a FIFO, not a regular file"));
  CHECK(collect_has(r.out, "cloud-init-output.log    skipped: is a symbolic link"));
  CHECK(collect_has(r.out, "kasm-bootstrap.log       skipped: is a symbolic link"));
  CHECK(collect_has(r.out, "state.json               skipped: is a directory, not a regular file"));
  CHECK_FALSE(collect_has(r.out, "OUTSIDE-THE-ROOT"));
  const auto members = collected_members(archive);
  CHECK(members.count("status.json") == 1);
  for (const auto* gone : {"cloud-init.log", "cloud-init-output.log", "kasm-bootstrap.log", "state.json"})
    CHECK(members.count(gone) == 0);
  for (const auto& [name, text] : members)
    CHECK_FALSE(collect_has(text, "OUTSIDE-THE-ROOT"));
  CHECK(collect_has(members.at("MANIFEST.txt"), "cloud-init.log: skipped (is a FIFO, not a regular file)"));
}

TEST_CASE("collect-logs: an existing destination is refused and untouched; a missing directory leaves nothing",
          "[cli][collect-logs][hostile]") {
  TempDir dir;
  const auto root = dir.path() / "root";
  make_collect_instance(root);
  const auto out = dir.path() / "out";
  fs::create_directories(out);
  const auto existing = out / "keep.tar.gz";
  write_collect_file(existing, "precious");
  const auto r = run_binary({"collect-logs", "--root", root.string(), "-a", existing.string()});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 13);
  CHECK(collect_has(r.err, "already exists"));
  CHECK(kb::test::read_file(existing) == "precious");
  CHECK(entries_in(out) == 1);

  SECTION("-o json: the error as one document") {
    const auto j = run_binary({"collect-logs", "--root", root.string(), "-a", existing.string(), "-o", "json"});
    CHECK(j.exit_code == 13);
    const auto doc = nlohmann::json::parse(j.out);
    CHECK(doc["exit_code"] == 13);
    CHECK(collect_has(doc["error"].get<std::string>(), "already exists"));
  }
  SECTION("a symlink at the destination is not written through") {
    const auto link = out / "link.tar.gz";
    fs::create_symlink(out / "target.tar.gz", link);
    CHECK(run_binary({"collect-logs", "--root", root.string(), "-a", link.string()}).exit_code == 13);
    CHECK_FALSE(fs::exists(out / "target.tar.gz"));
    CHECK(fs::is_symlink(link));
    CHECK(entries_in(out) == 2);
  }
  SECTION("a destination in a missing directory") {
    const auto missing = out / "no-such-dir" / "logs.tar.gz";
    const auto m = run_binary({"collect-logs", "--root", root.string(), "-a", missing.string()});
    INFO(m.err);
    CHECK(m.exit_code == 13);
    CHECK(collect_has(m.err, "its directory"));
    CHECK(collect_has(m.err, "No such file or directory"));
    CHECK_FALSE(fs::exists(out / "no-such-dir"));
    CHECK(entries_in(out) == 1);
  }
}

TEST_CASE("collect-logs: the journal through journalctl on PATH, masked; a failing or missing one is recorded",
          "[cli][collect-logs]") {
  // --root / reads this machine's files (read only); journalctl is a script of the test's.
  TempDir dir;
  const auto bin = dir.path() / "bin";
  const auto write_journalctl = [&](const std::string& body) {
    const auto script = dir.write("bin/journalctl", "#!/bin/sh\n" + body);
    fs::permissions(script, fs::perms::owner_all);
  };
  const std::map<std::string, std::string> env{{"PATH", bin.string()}, {"KASM_BOOTSTRAP_MANAGER_TOKEN", kCollectToken}};
  const auto collect = [&](const std::string& name) {
    return run_binary({"collect-logs", "--root", "/", "-a", (dir.path() / name).string()}, env);
  };

  write_journalctl("echo \"args: $*\"\necho \"kasm-bootstrap[1]: token " + kCollectToken + "\"\n");
  const auto ok = collect("ok.tar.gz");
  INFO(ok.out << ok.err);
  REQUIRE(ok.exit_code == 0);
  const auto members = collected_members(dir.path() / "ok.tar.gz");
  REQUIRE(members.count("journal.txt") == 1);
  const auto& journal = members.at("journal.txt");
  CHECK(collect_has(journal, "args: --no-pager -o short-iso -n 100000 -u kasm-bootstrap.service -u "
                             "kasm-bootstrap-health.service -u kasm-bootstrap-metadata-firewall.service\n"));
  CHECK(collect_has(journal, "kasm-bootstrap[1]: token ****\n"));
  check_no_token_in(members);

  write_journalctl("echo 'No journal files were found.' >&2\nexit 1\n");
  const auto failed = collect("failed.tar.gz");
  REQUIRE(failed.exit_code == 0);
  CHECK(collect_has(failed.out, "journal.txt              skipped: journalctl failed: exit status 1"));
  CHECK(collect_has(failed.out, "No journal files were found."));
  CHECK(collect_has(collected_members(dir.path() / "failed.tar.gz").at("MANIFEST.txt"),
                    "journal.txt: skipped (journalctl failed: exit status 1"));

  fs::remove(bin / "journalctl");
  const auto absent = collect("absent.tar.gz");
  REQUIRE(absent.exit_code == 0);
  CHECK(collect_has(absent.out, "journal.txt              skipped: journalctl could not run"));
}

TEST_CASE("collect-logs: a write that fails half-way leaves no archive and no temporary file",
          "[cli][collect-logs][hostile]") {
  TempDir dir;
  const auto root = dir.path() / "root";
  make_collect_instance(root);
  // 256 KiB that gzip cannot shrink much, against a file size limit of a few KiB:
  // the archive's write fails with EFBIG (SIGXFSZ ignored) after the temporary file exists.
  std::string noise;
  std::uint32_t x = 2463534242U;
  while (noise.size() < (std::size_t{256} << 10)) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    noise += static_cast<char>('!' + x % 94);
    if (noise.size() % 100 == 99) noise += '\n';
  }
  write_collect_file(root / "var/log/cloud-init.log", noise);
  const auto out = dir.path() / "out";
  fs::create_directories(out);
  const auto archive = out / "logs.tar.gz";
  const auto r =
      kb::test::run_process({"/bin/sh", "-c", "trap '' XFSZ; ulimit -f 8; exec \"$0\" \"$@\"", kb::test::binary_path(),
                             "collect-logs", "--root", root.string(), "-a", archive.string()});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 13);
  CHECK(collect_has(r.err, "cannot write"));
  CHECK(entries_in(out) == 0);
}

// `kasm-bootstrap collect-logs`: the real binary against a temp root, its tarball read
// back with tar(1): the members, the token masked wherever it was echoed (from the
// configuration and from the installed agent's configuration alone), hostile files
// skipped with a reason, and a destination that exists or cannot be written refused
// with nothing left behind.

#include "test_support.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

using kb::test::run_binary;
using kb::test::run_process;
using kb::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kCollectToken = "COLLECT-token-5d1e9a7c3b";
const std::string kCollectAgentToken = "AGENT-only-token-8f2b4c6d";

void write_text_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A root like an instance after a run: state files, cloud-init's logs, an installed
// Kasm 1.18 agent whose configuration holds kCollectAgentToken.
void make_instance(const fs::path& root) {
  write_text_file(root / "var/lib/kasm-bootstrap/status.json", R"({"state":"done"})");
  write_text_file(root / "var/lib/kasm-bootstrap/kasm-bootstrap.log", "I run with token " + kCollectToken + "\n");
  write_text_file(root / "var/log/cloud-init-output.log",
                  "+ echo " + kCollectToken + "\n+ agent token " + kCollectAgentToken + "\n");
  write_text_file(root / "var/log/cloud-init.log", "cloud-init ran\n");
  write_text_file(root / "opt/kasm/1.18.0/conf/app/agent/agent.app.config.yaml",
                  "manager:\n  token: " + kCollectAgentToken + "\n  hostnames: [m.example]\n");
  fs::create_directory_symlink("/opt/kasm/1.18.0", root / "opt/kasm/current");
}

// "name\n" per member, and the members' concatenated text.
std::pair<std::string, std::string> read_archive(const fs::path& archive) {
  const auto list = run_process({"tar", "-tzf", archive.string()});
  const auto text = run_process({"tar", "-xzOf", archive.string()});
  REQUIRE(list.exit_code == 0);
  REQUIRE(text.exit_code == 0);
  return {list.out, text.out};
}

bool text_has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("collect-logs: one tarball of the instance's logs, every token masked", "[cli][collect-logs]") {
  TempDir dir;
  const auto root = dir.path() / "root";
  make_instance(root);
  const auto archive = dir.path() / "logs.tar.gz";
  const auto r = run_binary({"collect-logs", "--root", root.string(), "--archive", archive.string()},
                            {{"KASM_BOOTSTRAP_MANAGER_TOKEN", kCollectToken}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  struct stat st {};
  REQUIRE(::stat(archive.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const auto [names, text] = read_archive(archive);
  for (const auto* member :
       {"MANIFEST.txt", "status.json", "kasm-bootstrap.log", "cloud-init.log", "cloud-init-output.log"})
    CHECK(text_has(names, std::string("/") + member + "\n"));
  CHECK(text_has(text, "I run with token ****"));
  CHECK_FALSE(text_has(text, kCollectToken));
  CHECK_FALSE(text_has(text, kCollectAgentToken));
  CHECK_FALSE(text_has(r.out + r.err, kCollectToken));
  CHECK(text_has(text, "journal.txt              skipped: --root is not /"));
  // Only the temp file's name was ever beside the archive, and it is gone.
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 2);
}

TEST_CASE("collect-logs: the agent's token is masked with no configuration given", "[cli][collect-logs]") {
  TempDir dir;
  const auto root = dir.path() / "root";
  make_instance(root);
  const auto archive = dir.path() / "logs.tar.gz";
  const auto r = run_binary({"collect-logs", "--root", root.string(), "-a", archive.string(), "-o", "json"});
  REQUIRE(r.exit_code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["schema_version"] == 1);
  CHECK(doc["archive"] == archive.string());
  const auto [names, text] = read_archive(archive);
  CHECK_FALSE(text_has(text, kCollectAgentToken));
  CHECK(text_has(text, "+ agent token ****"));
}

TEST_CASE("collect-logs: a FIFO, a symlink out of the root and a directory are skipped with a reason",
          "[cli][collect-logs][hostile]") {
  TempDir dir;
  const auto root = dir.path() / "root";
  fs::create_directories(root / "var/log");
  fs::create_directories(root / "var/lib/kasm-bootstrap/state.json"); // a directory in a file's place
  REQUIRE(::mkfifo((root / "var/log/cloud-init.log").c_str(), 0600) == 0);
  write_text_file(dir.path() / "outside-secret.txt", "OUTSIDE-THE-ROOT\n");
  fs::create_symlink(dir.path() / "outside-secret.txt", root / "var/log/cloud-init-output.log");
  const auto archive = dir.path() / "logs.tar.gz";
  const auto r = run_binary({"collect-logs", "--root", root.string(), "-a", archive.string()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0); // no hang on the FIFO: run_binary would time out
  CHECK(text_has(r.out, "cloud-init.log           is a FIFO"));
  CHECK(text_has(r.out, "cloud-init-output.log    is a symbolic link"));
  CHECK(text_has(r.out, "state.json               is a directory"));
  const auto [names, text] = read_archive(archive);
  CHECK_FALSE(text_has(text, "OUTSIDE-THE-ROOT"));
  CHECK_FALSE(text_has(names, "/cloud-init.log\n"));
}

TEST_CASE("collect-logs: an existing destination is refused and untouched; a missing directory leaves nothing",
          "[cli][collect-logs][hostile]") {
  TempDir dir;
  const auto root = dir.path() / "root";
  make_instance(root);
  const auto existing = dir.path() / "keep.tar.gz";
  write_text_file(existing, "precious");
  const auto r = run_binary({"collect-logs", "--root", root.string(), "-a", existing.string()});
  CHECK(r.exit_code == 13);
  CHECK(text_has(r.err, "already exists"));
  CHECK(kb::test::read_file(existing) == "precious");

  // A symlink at the destination is not written through either.
  const auto link = dir.path() / "link.tar.gz";
  fs::create_symlink(dir.path() / "target.tar.gz", link);
  CHECK(run_binary({"collect-logs", "--root", root.string(), "-a", link.string()}).exit_code == 13);
  CHECK_FALSE(fs::exists(dir.path() / "target.tar.gz"));

  const auto missing = dir.path() / "no-such-dir" / "logs.tar.gz";
  const auto m = run_binary({"collect-logs", "--root", root.string(), "-a", missing.string()});
  CHECK(m.exit_code == 13);
  CHECK(text_has(m.err, "cannot write in"));
  CHECK_FALSE(fs::exists(dir.path() / "no-such-dir"));
}

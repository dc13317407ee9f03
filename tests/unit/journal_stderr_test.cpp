// stderr connected to the journal (JOURNAL_STREAM, as systemd sets it for a unit): each
// log line carries its syslog priority and no timestamp; elsewhere, the usual lines.

#include "test_support.hpp"

#include <filesystem>
#include <sstream>
#include <string>

using kb::test::run_process;
using kb::test::TempDir;

namespace {

// A real `run` against loopback only (the release URL is the discard port, so the
// download fails at once): info, warning and error lines on stderr.
kb::test::RunResult run_with_stderr_env(const TempDir& root, const std::string& journal_stream_cmd) {
  const auto config =
      root.write("c.json", R"({"server_id": "3f6c2a4e-9b1d-4c57-a8e2-6d0f1b7c9e21", "manager_address": "127.0.0.1:9",
        "manager_token": "tok-journal-0123456789", "agent_address": "10.1.2.3", "swap_size": "off",
        "release_url": "https://127.0.0.1:9/k.tgz", "download_timeout_seconds": 5, "console": "",
        "release_sha256": ")" + std::string(64, 'a') +
                               "\"}");
  // The shell computes JOURNAL_STREAM from its own stderr (the pipe the binary inherits),
  // the way systemd describes the stream it connected.
  const std::string script = journal_stream_cmd + " exec \"$0\" run --root \"$1\" --config \"$2\"";
  return run_process({"sh", "-c", script, kb::test::binary_path(), (root.path() / "r").string(), config.string()}, {},
                     "", std::chrono::seconds(60));
}

} // namespace

TEST_CASE("journal: stderr lines carry <N> priorities and no timestamp when stderr is the journal", "[log]") {
  TempDir root;
  std::filesystem::create_directories(root.path() / "r");
  const auto journal =
      run_with_stderr_env(root, "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2); export JOURNAL_STREAM;");
  INFO(journal.err);
  std::istringstream lines(journal.err);
  std::string line;
  int prefixed = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const bool priority = line.rfind("<7>", 0) == 0 || line.rfind("<6>", 0) == 0 || line.rfind("<4>", 0) == 0 ||
                          line.rfind("<3>", 0) == 0;
    CHECK(priority);
    CHECK(line.find("\x1b[") == std::string::npos);
    if (line[0] == '<') ++prefixed;
  }
  CHECK(prefixed > 0);
  CHECK(journal.err.find("<3>") != std::string::npos); // the failed step, at error priority

  // A JOURNAL_STREAM that names another file is not ours: the usual "I 12:00:00.000" lines.
  const auto other = run_with_stderr_env(root, "JOURNAL_STREAM=1:1; export JOURNAL_STREAM;");
  CHECK(other.err.find("<6>") == std::string::npos);
  const bool usual = other.err.find("\nI ") != std::string::npos || other.err.rfind("I ", 0) == 0 ||
                     other.err.find("D ") != std::string::npos;
  CHECK(usual);
}

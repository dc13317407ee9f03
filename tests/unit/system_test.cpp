// The side-effect boundary itself: files under a root, atomic writes, child processes.

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/process.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/util/redactor.hpp"
#include "kasm_bootstrap/util/secret.hpp"
#include "test_support.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

using namespace kb;
using kb::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("machine paths map under the root and cannot escape it", "[system][rootfs]") {
  TempDir root;
  sys::RootFs fs(root.path());
  CHECK(fs.host_path("/etc/fstab") == root.path() / "etc/fstab");
  CHECK_THROWS_AS(fs.host_path("etc/fstab"), kb::Error);
  CHECK_THROWS_AS(fs.host_path("/etc/../../outside"), kb::Error);
  CHECK(sys::RootFs("/").host_path("/etc/fstab") == "/etc/fstab");
  CHECK(sys::RootFs(root.path().string() + "/").root() == root.path());
}

TEST_CASE("atomic writes leave either the old file or the new one, never a temporary", "[system][rootfs]") {
  TempDir root;
  sys::RootFs fs(root.path());
  fs.create_directories("/etc/kasm", 0750);
  struct stat st {};
  REQUIRE(::stat((root.path() / "etc/kasm").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0750);

  fs.write_file_atomic("/etc/kasm/a.conf", "old", 0600);
  REQUIRE(::stat((root.path() / "etc/kasm/a.conf").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  {
    sys::AtomicFile file(fs.host_path("/etc/kasm/a.conf"), 0644);
    file.write("half of the new content");
    // destroyed without commit(): as if an exception unwound the writer
  }
  CHECK(fs.read_file("/etc/kasm/a.conf") == "old");
  CHECK(fs.list_directory("/etc/kasm") == std::vector<std::string>{"a.conf"});
  fs.write_file_atomic("/etc/kasm/a.conf", "new", 0644);
  CHECK(fs.read_file("/etc/kasm/a.conf") == "new");
  CHECK_FALSE(fs.read_file("/etc/missing").has_value());
  CHECK_THROWS(fs.read_file("/etc/kasm/a.conf", 2)); // over the size limit
}

TEST_CASE("child processes: none of our KASM_BOOTSTRAP_* configuration reaches their environment",
          "[system][process]") {
  // The manager token may come to us as KASM_BOOTSTRAP_MANAGER_TOKEN; /proc/<pid>/environ of
  // install.sh or bin/start would show it.
  ::setenv("KASM_BOOTSTRAP_MANAGER_TOKEN", "tok-env-never-inherited-7c2e", 1);
  ::setenv("KB_TEST_KEPT", "yes", 1);
  sys::ProcessRunner runner;
  std::vector<std::string> lines;
  sys::Command cmd;
  cmd.argv = {"env"};
  cmd.env_overrides = {{"DOCKER_HOST", "unix:///x.sock"}};
  cmd.on_output_line = [&](std::string_view l) { lines.emplace_back(l); };
  const auto r = runner.run(cmd);
  ::unsetenv("KASM_BOOTSTRAP_MANAGER_TOKEN");
  ::unsetenv("KB_TEST_KEPT");
  CHECK(r.success());
  const auto has = [&](const std::string& line) { return std::find(lines.begin(), lines.end(), line) != lines.end(); };
  CHECK(has("KB_TEST_KEPT=yes"));
  CHECK(has("DOCKER_HOST=unix:///x.sock"));
  for (const auto& l : lines)
    CHECK(l.rfind("KASM_BOOTSTRAP_", 0) != 0);
}

TEST_CASE("child processes: output lines, exit status, stdin closed, deadline kills the group", "[system][process]") {
  sys::ProcessRunner runner;
  std::vector<std::string> lines;
  sys::Command cmd;
  cmd.argv = {"sh", "-c", "echo one; echo two >&2; printf three; exit 3"};
  cmd.on_output_line = [&](std::string_view l) { lines.emplace_back(l); };
  auto r = runner.run(cmd);
  CHECK(r.exit_code == 3);
  CHECK_FALSE(r.success());
  CHECK(lines == std::vector<std::string>{"one", "two", "three"});
  CHECK(r.describe_outcome() == "exit status 3");

  SECTION("a prompt on stdin fails at once instead of hanging") {
    sys::Command prompt;
    prompt.argv = {"sh", "-c", "read answer || { echo no-input; exit 9; }"};
    prompt.timeout = std::chrono::seconds(20);
    const auto p = runner.run(prompt);
    CHECK(p.exit_code == 9);
    CHECK_FALSE(p.timed_out);
  }
  SECTION("stdin is /dev/null even when ours is an open pipe that never ends") {
    // The suite's own stdin is often /dev/null already, which would hide a child that
    // inherits it: give this process a pipe on fd 0 whose write end stays open, so a
    // child that inherited it would block on `read` until the deadline.
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const int saved = ::dup(0);
    REQUIRE(saved >= 0);
    REQUIRE(::dup2(fds[0], 0) == 0);
    sys::Command who;
    who.argv = {"sh", "-c", "readlink /proc/self/fd/0; read answer || { echo no-input; exit 9; }"};
    who.timeout = std::chrono::seconds(20);
    std::vector<std::string> said;
    who.on_output_line = [&](std::string_view l) { said.emplace_back(l); };
    const auto w = runner.run(who);
    ::dup2(saved, 0);
    ::close(saved);
    ::close(fds[0]);
    ::close(fds[1]);
    CHECK(said == std::vector<std::string>{"/dev/null", "no-input"});
    CHECK(w.exit_code == 9);
    CHECK_FALSE(w.timed_out);
  }
  SECTION("a grandchild that never stops writing to the pipe does not keep the run waiting") {
    // The child leaves `yes` behind on the same stdout and exits 0: the runner takes what
    // one pipe holds and returns. Before the drain was bounded this never returned (ctest's
    // timeout would end it); nothing here measures a time.
    TempDir tmp;
    const auto pidfile = tmp.path() / "writer.pid";
    sys::Command spill;
    spill.argv = {"sh", "-c", "yes & echo $! > " + pidfile.string() + "; exit 0"};
    spill.tail_lines = 3;
    const auto s = runner.run(spill);
    const auto writer = kb::test::read_file(pidfile);
    REQUIRE_FALSE(writer.empty());
    ::kill(std::stoi(writer), SIGKILL);
    CHECK(s.exit_code == 0);
    CHECK_FALSE(s.timed_out);
  }
  SECTION("lines a grandchild passes on just after the child exits are kept") {
    // As Kasm's install.sh does (`exec &> >(tee LOG)`): the shell exits, then tee writes its
    // last lines. The writer here is a stand-in for a tee that is late under load.
    std::vector<std::string> got;
    sys::Command late;
    late.argv = {"sh", "-c", "echo first; (sleep 0.3; echo last) & exit 0"};
    late.on_output_line = [&](std::string_view l) { got.emplace_back(l); };
    const auto r2 = runner.run(late);
    CHECK(r2.exit_code == 0);
    CHECK(got == std::vector<std::string>{"first", "last"});
  }
  SECTION("a grandchild that keeps the pipe open without writing does not keep the run waiting") {
    // `sleep 60` holds the pipe and writes nothing: the run returns after the drain's grace
    // while the holder is still alive, so it was not waited for (nothing here measures a
    // time; were it waited for, the test would end only with ctest's timeout).
    TempDir tmp;
    const auto pidfile = tmp.path() / "holder.pid";
    sys::Command hold;
    hold.argv = {"sh", "-c", "sleep 60 & echo $! > " + pidfile.string() + "; exit 0"};
    const auto h = runner.run(hold);
    const auto holder = kb::test::read_file(pidfile);
    REQUIRE_FALSE(holder.empty());
    const pid_t holder_pid = std::stoi(holder);
    const bool still_holding = ::kill(holder_pid, 0) == 0;
    ::kill(holder_pid, SIGKILL);
    CHECK(h.exit_code == 0);
    CHECK(still_holding);
  }
  SECTION("the deadline stops the child and its own children") {
    TempDir tmp;
    const auto marker = tmp.path() / "grandchild-survived";
    sys::Command hang;
    hang.argv = {"sh", "-c", "(sleep 3; touch " + marker.string() + ") & sleep 60"};
    hang.timeout = std::chrono::milliseconds(300);
    hang.kill_grace = std::chrono::milliseconds(200);
    const auto h = runner.run(hang);
    CHECK(h.timed_out);
    CHECK_FALSE(h.success());
    std::this_thread::sleep_for(std::chrono::seconds(4));
    CHECK_FALSE(fs::exists(marker));
  }
  SECTION("cancellation stops the child") {
    std::atomic<bool> cancel{false};
    std::thread t([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      cancel = true;
    });
    sys::Command longrun;
    longrun.argv = {"sleep", "60"};
    const auto c = runner.run(longrun, &cancel);
    t.join();
    CHECK(c.cancelled);
  }
  SECTION("a child killed by a signal is described by the signal's name") {
    sys::Command killed;
    killed.argv = {"sh", "-c", "kill -TERM $$"};
    const auto k = runner.run(killed);
    CHECK_FALSE(k.success());
    CHECK(k.describe_outcome() == "killed by signal Terminated");
  }
  SECTION("a missing program is an exception naming it") {
    sys::Command missing;
    missing.argv = {"/nonexistent/program"};
    CHECK_THROWS_WITH(runner.run(missing), Catch::Contains("/nonexistent/program"));
  }
}

TEST_CASE("command lines and output tails are redacted", "[system][secrets]") {
  const Secret token("tail-secret-0123456789");
  CHECK(sys::describe_command({"install.sh", "-M", token.reveal(), "-p", "10.0.0.1"}) ==
        "install.sh -M **** -p 10.0.0.1");
  sys::ProcessRunner runner;
  sys::Command cmd;
  cmd.argv = {"sh", "-c", "echo using token tail-secret-0123456789"};
  const auto r = runner.run(cmd);
  REQUIRE(r.tail.size() == 1);
  CHECK(r.tail.front() == "using token ****");
}

TEST_CASE("a secret with quotes is masked on the command line before it is quoted", "[system][secrets]") {
  const Secret token("it's-a\"token\"-$HOME-0123456789");
  const auto line = sys::describe_command({"install.sh", "-M", token.reveal(), "-p", "10.0.0.1"});
  CHECK(line == "install.sh -M **** -p 10.0.0.1");
  CHECK(line.find("token") == std::string::npos);
}

TEST_CASE("the redactor also knows a secret's JSON, shell and URL spellings", "[secrets]") {
  Redactor r;
  const std::string secret = "ab'c\"d\\e f/g&h=0123";
  r.add(secret);
  CHECK(r.scrub("plain " + secret) == "plain ****");
  CHECK(r.scrub(R"(json {"t": "ab'c\"d\\e f/g&h=0123"})") == R"(json {"t": "****"})");
  CHECK(r.scrub("sh 'ab'\\''c\"d\\e f/g&h=0123'") == "sh '****'");
  CHECK(r.scrub(R"(printf-q ab\'c\"d\\e\ f/g\&h=0123)") == "printf-q ****");
  CHECK(r.scrub("url ?t=ab%27c%22d%5Ce%20f%2Fg%26h%3D0123") == "url ?t=****");
}

TEST_CASE("the redactor masks whole secrets, PEM lines and escaped PEM", "[secrets]") {
  Redactor r;
  r.add("-----BEGIN PRIVATE KEY-----\nAAAABBBBCCCCDDDDEEEEFFFF\nGGGGHHHHIIIIJJJJ\n-----END PRIVATE KEY-----\n");
  r.add("short");
  CHECK(r.scrub("line AAAABBBBCCCCDDDDEEEEFFFF end") == "line **** end");
  CHECK(r.scrub(
            "-----BEGIN PRIVATE KEY-----\\nAAAABBBBCCCCDDDDEEEEFFFF\\nGGGGHHHHIIIIJJJJ\\n-----END PRIVATE KEY-----") ==
        "****");
  CHECK(r.scrub("a short story") == "a **** story");
  CHECK(r.scrub("-----BEGIN PRIVATE KEY-----") == "-----BEGIN PRIVATE KEY-----");
  Redactor empty;
  empty.add("   ");
  CHECK(empty.scrub("   spaces   ") == "   spaces   ");
}

namespace {

// Every piece of `secret` of at least `n` bytes that occurs in `text`.
std::vector<std::string> pieces_shown(const std::string& text, const std::string& secret, std::size_t n) {
  std::vector<std::string> shown;
  for (std::size_t i = 0; i + n <= secret.size(); ++i)
    if (text.find(secret.substr(i, n)) != std::string::npos) shown.push_back(secret.substr(i, n));
  return shown;
}

} // namespace

TEST_CASE("a secret split over lines is masked on each line it spans", "[secrets]") {
  Redactor r;
  const std::string secret = "SPLIT-token-7c1e9b2a44";
  r.add(secret);
  SECTION("two lines") {
    LineScrubber s(r);
    CHECK(s.scrub("Setting Default Manager Token as SPLIT-toke") == "Setting Default Manager Token as ****");
    CHECK(s.scrub("n-7c1e9b2a44 done") == "**** done");
    CHECK(s.scrub("next line") == "next line");
  }
  SECTION("a wrap every 5 bytes, over five lines") {
    LineScrubber s(r);
    std::string all = s.scrub("value: ");
    for (std::size_t i = 0; i < secret.size(); i += 5)
      all += s.scrub(secret.substr(i, 5)) + "\n";
    all += s.scrub("after");
    INFO(all);
    CHECK(pieces_shown(all, secret, LineScrubber::kMinSplitPrefix).empty());
    CHECK(all.find("after") != std::string::npos);
  }
  SECTION("a split after fewer bytes than kMinSplitPrefix shows those, never more") {
    LineScrubber s(r);
    CHECK(s.scrub("x SPL") == "x SPL");
    CHECK(s.scrub("IT-token-7c1e9b2a44 y") == "**** y");
  }
  SECTION("lines that only look like a start are left alone after the next line") {
    LineScrubber s(r);
    CHECK(s.scrub("a SPLIT-") == "a ****"); // a start of the secret is masked at once
    CHECK(s.scrub("something else") == "something else");
    CHECK(s.scrub("ordinary text") == "ordinary text");
  }
}

TEST_CASE("child output: a token the child wraps over lines is masked in the tail and the line callback",
          "[system][secrets]") {
  const Secret token("wrapped-secret-5d0a3e91c7");
  sys::ProcessRunner runner;
  sys::Command cmd;
  cmd.argv = {"sh", "-c", "printf 'token wrapped-sec\\nret-5d0a3\\ne91c7 end\\n'"};
  cmd.tail_lines = 10;
  std::string seen;
  cmd.on_output_line = [&](std::string_view line) { seen += std::string(line) + "\n"; };
  const auto r = runner.run(cmd);
  std::string tail;
  for (const auto& l : r.tail)
    tail += l + "\n";
  INFO(seen);
  CHECK(pieces_shown(seen, token.reveal(), LineScrubber::kMinSplitPrefix).empty());
  CHECK(pieces_shown(tail, token.reveal(), LineScrubber::kMinSplitPrefix).empty());
  CHECK(seen.find("end") != std::string::npos);
}

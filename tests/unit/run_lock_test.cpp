// One run at a time and no orphans: the run lock (a second holder is refused, naming the
// first, or waits), the installer's process-group record and what a later run does with
// it, and the parent-death signal on every child.

#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/process.hpp"
#include "kasm_bootstrap/system/run_lock.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace kb;
using kb::test::TempDir;
namespace fs = std::filesystem;

namespace {

bool lock_test_alive(pid_t pid) { return ::kill(pid, 0) == 0; }

// A helper process that takes the run lock and holds it until killed (a forked child, so
// the lock is another process's, as it is for a second `run`).
pid_t hold_lock_in_child(const sys::RootFs& fs) {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    std::atomic<bool> never{false};
    try {
      const auto lock = sys::RunLock::acquire(fs, "/var/lib/kasm-bootstrap", "run", false, never);
      (void)!::write(ready[1], "x", 1);
      for (;;)
        ::pause();
    } catch (...) {
      ::_exit(3);
    }
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  return pid;
}

void lock_test_stop(pid_t pid) {
  if (::kill(pid, SIGKILL) == 0) ::waitpid(pid, nullptr, 0);
}

// Kills the holder however the test case ends: a failed check must not leave it holding
// the test's output pipe (ctest would wait for it until its timeout).
struct HolderGuard {
  pid_t pid;
  ~HolderGuard() { lock_test_stop(pid); }
};

} // namespace

TEST_CASE("run lock: a second holder is refused with the first one's pid and command", "[lock]") {
  TempDir root;
  const sys::RootFs fs(root.path());
  const pid_t holder = hold_lock_in_child(fs);
  const HolderGuard guard{holder};
  std::atomic<bool> cancel{false};
  std::string message;
  try {
    sys::RunLock::acquire(fs, "/var/lib/kasm-bootstrap", "run", false, cancel);
    FAIL("the lock was taken twice");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kBusy);
    message = e.what();
  }
  CHECK(message.find("another kasm-bootstrap is running here (pid " + std::to_string(holder) + " run since ") !=
        std::string::npos);
  CHECK(message.find("--wait-lock") != std::string::npos);

  SECTION("waiting ends when the holder does") {
    std::thread killer([holder] {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      lock_test_stop(holder);
    });
    const auto lock = sys::RunLock::acquire(fs, "/var/lib/kasm-bootstrap", "prebake", true, cancel);
    killer.join();
    const auto text = kb::test::read_file(root.path() / "var/lib/kasm-bootstrap/run.lock");
    CHECK(text.rfind("pid " + std::to_string(::getpid()) + " prebake since ", 0) == 0);
  }
  SECTION("waiting ends on cancel") {
    std::thread canceller([&cancel] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      cancel.store(true);
    });
    CHECK_THROWS_WITH(sys::RunLock::acquire(fs, "/var/lib/kasm-bootstrap", "run", true, cancel),
                      Catch::Contains("interrupted while waiting for the run lock"));
    canceller.join();
    lock_test_stop(holder);
  }
}

TEST_CASE("run lock: released when its holder dies, and a symlink at its name is refused", "[lock]") {
  TempDir root;
  const sys::RootFs fs(root.path());
  std::atomic<bool> cancel{false};
  const pid_t holder = hold_lock_in_child(fs);
  lock_test_stop(holder); // SIGKILL: the kernel drops the flock
  CHECK_NOTHROW(sys::RunLock::acquire(fs, "/var/lib/kasm-bootstrap", "run", false, cancel));

  TempDir outside;
  const auto target = outside.write("precious", "keep me");
  fs::remove(root.path() / "var/lib/kasm-bootstrap/run.lock");
  fs::create_symlink(target, root.path() / "var/lib/kasm-bootstrap/run.lock");
  CHECK_THROWS_WITH(sys::RunLock::acquire(fs, "/var/lib/kasm-bootstrap", "run", false, cancel),
                    Catch::Contains("cannot open the run lock"));
  CHECK(kb::test::read_file(target) == "keep me");
}

TEST_CASE("process group record: written while the child runs, removed after", "[process][orphans]") {
  TempDir dir;
  const auto record = dir.path() / "installer.group";
  sys::ProcessRunner runner;
  sys::Command cmd;
  // The record is written just after the child starts: wait for it (bounded).
  cmd.argv = {"sh", "-c",
              "i=0; while [ ! -s " + record.string() + " ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; cat " +
                  record.string() + "; echo pgid $(cut -d' ' -f5 /proc/$$/stat)"};
  cmd.group_record = record;
  std::vector<std::string> lines;
  cmd.on_output_line = [&](std::string_view l) { lines.emplace_back(l); };
  const auto r = runner.run(cmd);
  REQUIRE(r.success());
  REQUIRE(lines.size() == 2);
  // "PGID START": the child leads its own group, and the record names it.
  const auto pgid = lines[0].substr(0, lines[0].find(' '));
  CHECK(lines[1].find(pgid) != std::string::npos);
  CHECK(std::stoull(lines[0].substr(lines[0].find(' ') + 1)) > 0);
  CHECK_FALSE(fs::exists(record));
}

TEST_CASE("end_recorded_group ends what a killed run left, and only that", "[process][orphans]") {
  TempDir dir;
  const auto record = dir.path() / "installer.group";
  SECTION("a live group whose leader is gone is ended") {
    // A leader that exits at once and a member left behind in its group, as the fake
    // installer's sleep is when the installer itself was killed.
    const pid_t leader = ::fork();
    REQUIRE(leader >= 0);
    if (leader == 0) {
      ::setpgid(0, 0);
      if (::fork() == 0) {
        ::execlp("sleep", "sleep", "30", static_cast<char*>(nullptr));
        ::_exit(127);
      }
      ::_exit(0);
    }
    ::setpgid(leader, leader);
    ::waitpid(leader, nullptr, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    REQUIRE(::kill(-leader, 0) == 0); // the sleep is still in the group
    std::ofstream(record) << leader << " 0\n";
    const auto said = sys::end_recorded_group(record, std::chrono::seconds(2));
    REQUIRE(said);
    CHECK(said->find("ended process group " + std::to_string(leader)) != std::string::npos);
    CHECK(::kill(-leader, 0) != 0);
    CHECK_FALSE(fs::exists(record));
  }
  SECTION("a pid now used by another process is left alone") {
    // A live group leader whose start time is not the recorded one: the id was reused.
    const pid_t other = ::fork();
    REQUIRE(other >= 0);
    if (other == 0) {
      ::setpgid(0, 0);
      ::execlp("sleep", "sleep", "30", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::setpgid(other, other);
    std::ofstream(record) << other << " 1\n";
    CHECK_FALSE(sys::end_recorded_group(record));
    CHECK(lock_test_alive(other));
    CHECK_FALSE(fs::exists(record));
    lock_test_stop(other);
  }
  SECTION("no record, a damaged one, or a group already gone") {
    CHECK_FALSE(sys::end_recorded_group(record));
    std::ofstream(record) << "garbage\n";
    CHECK_FALSE(sys::end_recorded_group(record));
    std::ofstream(record) << "1 0\n"; // never init
    CHECK_FALSE(sys::end_recorded_group(record));
  }
}

TEST_CASE("a child dies with the process that started it (parent-death signal)", "[process][orphans]") {
  // A middle process runs a child through ProcessRunner and is then SIGKILLed, as a run
  // is; the child must not outlive it.
  TempDir dir;
  const auto pid_file = dir.path() / "child.pid";
  const pid_t middle = ::fork();
  REQUIRE(middle >= 0);
  if (middle == 0) {
    sys::ProcessRunner runner;
    sys::Command cmd;
    cmd.argv = {"sh", "-c", "echo $$ > " + pid_file.string() + "; exec sleep 30"};
    runner.run(cmd);
    ::_exit(0);
  }
  for (int i = 0; i < 100 && !fs::exists(pid_file); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const pid_t child = std::stoi(kb::test::read_file(pid_file));
  REQUIRE(lock_test_alive(child));
  lock_test_stop(middle);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    // Reparented to init (or a subreaper), which reaps it once the signal landed.
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    gone = all.empty() || all.find(") Z ") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(gone);
}

// Package locks under a temporary root, held by a real process with fcntl the way apt and
// dpkg hold them.

#include "lock_holder.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/package_locks.hpp"

using namespace kb;
using namespace kb::test;

TEST_CASE("package locks: free, absent and held locks", "[locks]") {
  TempDir root;
  sys::RootFs fs(root.path());
  CHECK_FALSE(sys::lock_holder(fs, "/var/lib/dpkg/lock-frontend")); // absent
  CHECK_FALSE(root.path().string().empty());
  CHECK_FALSE(std::filesystem::exists(root.path() / "var/lib/dpkg/lock-frontend")); // and not created
  root.write("var/lib/dpkg/lock", "");
  CHECK_FALSE(sys::lock_holder(fs, "/var/lib/dpkg/lock")); // free
  CHECK_FALSE(sys::package_lock_holder(fs));

  HeldLock held(root.path() / "var/lib/dpkg/lock", -1);
  const auto holder = sys::lock_holder(fs, "/var/lib/dpkg/lock");
  REQUIRE(holder);
  CHECK(holder->pid == held.pid());
  CHECK(holder->process == "apt-get");
  CHECK(holder->describe() == "/var/lib/dpkg/lock held by apt-get (pid " + std::to_string(held.pid()) + ")");
  const auto any = sys::package_lock_holder(fs);
  REQUIRE(any);
  CHECK(any->lock_file == "/var/lib/dpkg/lock");
}

TEST_CASE("package locks: the wait ends when the holder lets go, and names it", "[locks]") {
  TempDir root;
  sys::RootFs fs(root.path());
  HeldLock held(root.path() / "var/lib/dpkg/lock-frontend", 0.7);
  std::vector<std::string> told;
  sys::LockWaitOptions options;
  options.timeout = std::chrono::seconds(60);
  options.on_holder = [&](const sys::LockHolder& h) { told.push_back(h.describe()); };
  const auto r = sys::wait_for_package_locks(fs, options);
  REQUIRE(r.first_holder);
  CHECK(r.first_holder->pid == held.pid());
  CHECK(r.first_holder->process == "apt-get");
  REQUIRE(told.size() == 1);
  CHECK(told[0].find("/var/lib/dpkg/lock-frontend held by apt-get") != std::string::npos);
  CHECK_FALSE(sys::package_lock_holder(fs));
}

TEST_CASE("package locks: the deadline fails naming the lock and its holder", "[locks]") {
  TempDir root;
  sys::RootFs fs(root.path());
  HeldLock held(root.path() / "var/lib/apt/lists/lock", -1);
  sys::LockWaitOptions options;
  options.timeout = std::chrono::milliseconds(300);
  try {
    sys::wait_for_package_locks(fs, options);
    FAIL("the wait should have failed");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kPackageLock);
    const std::string message = e.what();
    CHECK(message.find("/var/lib/apt/lists/lock held by apt-get (pid " + std::to_string(held.pid()) + ")") !=
          std::string::npos);
    CHECK(message.find("lock_timeout_seconds") != std::string::npos);
  }
}

TEST_CASE("package locks: an interrupt ends the wait", "[locks]") {
  TempDir root;
  sys::RootFs fs(root.path());
  HeldLock held(root.path() / "var/lib/dpkg/lock", -1);
  std::atomic<bool> cancel{true};
  sys::LockWaitOptions options;
  options.cancel = &cancel;
  try {
    sys::wait_for_package_locks(fs, options);
    FAIL("the wait should have been interrupted");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kInterrupted);
  }
}

TEST_CASE("wait-package-locks step: dry run shows each lock's state, apply waits", "[locks][steps]") {
  TempDir root;
  config::Config config;
  config.lock_timeout_seconds = 60;
  sys::ProcessRunner processes;
  net::HttpClient http;
  Machine machine{sys::RootFs(root.path()), processes, http};
  plan::Facts facts;
  std::atomic<bool> cancelled{false};
  const plan::StepContext ctx{config, machine, facts, cancelled};
  auto step = steps::make_wait_package_locks();

  HeldLock held(root.path() / "var/lib/dpkg/lock-frontend", 0.5);
  const auto d = step->describe(ctx);
  REQUIRE(d.actions.size() == 3);
  CHECK(d.actions[0].target == "/var/lib/dpkg/lock-frontend");
  CHECK(d.actions[0].detail == "held now by apt-get (pid " + std::to_string(held.pid()) + ")");
  CHECK(d.actions[1].detail == "free now");
  CHECK(d.summary.find("deadline 60 s") != std::string::npos);

  const auto out = step->apply(ctx);
  CHECK(out.at("lock_was_held_by").find("apt-get") != std::string::npos);
}

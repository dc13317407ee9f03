#pragma once
// One run at a time on a machine (or a --root): `run` and `prebake` hold an exclusive
// flock on <state_dir>/run.lock for as long as they live. The kernel drops the lock when
// the process ends, however it ends (SIGKILL included; docs/platform.md), so a lock is never stale; the
// file only says who holds it ("pid 1234 run since 2026-12-01T23:46:21Z"). `plan`,
// `health` and `detect-address` never take it.

#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string_view>

namespace kb::sys {

inline constexpr const char* kRunLockFile = "run.lock";

class RunLock {
public:
  // Takes the lock for `command` ("run", "prebake"). Busy: without `wait`, a
  // kb::Error(ExitCode::kBusy) naming the holder; with `wait`, waits (saying so once)
  // until the holder ends or `cancel` becomes true (kb::Error(kInterrupted)).
  static RunLock acquire(const RootFs& fs, const std::filesystem::path& state_dir, std::string_view command, bool wait,
                         const std::atomic<bool>& cancel);

private:
  explicit RunLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

} // namespace kb::sys

#pragma once
// apt/dpkg locks, tested the way dpkg and apt take them: whole-file POSIX record locks
// (fcntl) on lock-frontend, then lock, plus the lists lock. The files are under the root
// dir; holders are named from the kernel's /proc because the pid comes from the kernel.

#include "kasm_bootstrap/system/root_fs.hpp"

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace kb::sys {

// In the order a dpkg frontend acquires them.
inline constexpr std::array<const char*, 3> kPackageLockFiles = {
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/lock",
    "/var/lib/apt/lists/lock",
};

struct LockHolder {
  std::string lock_file; // machine path
  pid_t pid = 0;         // 0 when the kernel cannot say (open-file-description locks)
  std::string process;   // /proc/<pid>/comm, or "unknown process"

  // "/var/lib/dpkg/lock-frontend held by apt-get (pid 1234)"
  std::string describe() const;
};

// Who holds a write lock on this file right now; nullopt when free or the file is absent.
// Read-only: never creates the file and never takes the lock.
std::optional<LockHolder> lock_holder(const RootFs& fs, const std::string& machine_path);

// The first held lock of kPackageLockFiles, or nullopt when all are free.
std::optional<LockHolder> package_lock_holder(const RootFs& fs);

struct LockWaitOptions {
  std::chrono::milliseconds timeout{600'000};
  const std::atomic<bool>* cancel = nullptr;
  // Told whenever the holder changes, so the log names who we are waiting for.
  std::function<void(const LockHolder&)> on_holder;
};

struct LockWaitResult {
  std::chrono::milliseconds waited{0};
  std::optional<LockHolder> first_holder; // set when there was anything to wait for
};

// Polls (short, growing intervals) until every package lock is free at the same moment.
// Throws kb::Error(kPackageLock) at the deadline naming the holder, kInterrupted on cancel.
LockWaitResult wait_for_package_locks(const RootFs& fs, const LockWaitOptions& options);

} // namespace kb::sys

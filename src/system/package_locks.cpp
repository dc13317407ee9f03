#include "kasm_bootstrap/system/package_locks.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <system_error>
#include <thread>

namespace kb::sys {
namespace {

using Clock = std::chrono::steady_clock;

std::string process_name(pid_t pid) {
  if (pid <= 0) return "unknown process";
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  if (!std::getline(in, name) || name.empty()) return "unknown process";
  return name;
}

bool same_holder(const std::optional<LockHolder>& a, const std::optional<LockHolder>& b) {
  if (!a || !b) return !a && !b;
  return a->lock_file == b->lock_file && a->pid == b->pid;
}

} // namespace

std::string LockHolder::describe() const {
  std::string s = lock_file + " held by " + process;
  if (pid > 0) s += " (pid " + std::to_string(pid) + ")";
  return s;
}

std::optional<LockHolder> lock_holder(const RootFs& fs, const std::string& machine_path) {
  // O_RDONLY is enough for F_GETLK and cannot create or modify the lock file.
  UniqueFd fd = fs.open_file(machine_path, O_RDONLY | O_NOCTTY);
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw std::system_error(errno, std::generic_category(), "cannot open lock file " + machine_path);
  }
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  probe.l_start = 0;
  probe.l_len = 0; // whole file, as dpkg and apt lock it
  if (::fcntl(fd.get(), F_GETLK, &probe) != 0)
    throw std::system_error(errno, std::generic_category(), "cannot test lock " + machine_path);
  if (probe.l_type == F_UNLCK) return std::nullopt;
  return LockHolder{machine_path, probe.l_pid > 0 ? probe.l_pid : 0, process_name(probe.l_pid)};
}

std::optional<LockHolder> package_lock_holder(const RootFs& fs) {
  for (const char* file : kPackageLockFiles)
    if (auto holder = lock_holder(fs, file)) return holder;
  return std::nullopt;
}

LockWaitResult wait_for_package_locks(const RootFs& fs, const LockWaitOptions& options) {
  const auto start = Clock::now();
  const auto deadline = start + options.timeout;
  LockWaitResult result;
  std::optional<LockHolder> last;
  // Start fast (apt often lets go within a second) and back off to a gentle 1 s poll.
  auto interval = std::chrono::milliseconds(50);
  for (;;) {
    auto holder = package_lock_holder(fs);
    if (!holder) break;
    if (!result.first_holder) result.first_holder = holder;
    if (!same_holder(holder, last) && options.on_holder) options.on_holder(*holder);
    last = holder;

    const auto now = Clock::now();
    if (now >= deadline) {
      const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
      throw Error(ExitCode::kPackageLock, "package lock still busy after " + std::to_string(secs) +
                                              " s: " + holder->describe() +
                                              " (raise lock_timeout_seconds, or find out why it runs that long)");
    }
    if (options.cancel && options.cancel->load())
      throw Error(ExitCode::kInterrupted, "interrupted while waiting for " + holder->describe());
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    std::this_thread::sleep_for(std::min(interval, left));
    interval = std::min(interval * 2, std::chrono::milliseconds(1000));
  }
  result.waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return result;
}

} // namespace kb::sys

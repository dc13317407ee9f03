#include "kasm_bootstrap/system/run_lock.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"
#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/util/message_text.hpp"
#include "kasm_bootstrap/util/utc_time.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

namespace kb::sys {
namespace {

// Who holds the lock, from the file's first line (bounded: the file is ours, but a
// damaged one must not flood the message).
std::string holder_of(int fd) {
  char buf[256];
  const ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  if (n <= 0) return "a process that has not said who it is yet";
  std::string line(buf, static_cast<std::size_t>(n));
  line = line.substr(0, line.find('\n'));
  return util::quote_for_message(line, 120);
}

} // namespace

RunLock RunLock::acquire(const RootFs& fs, const std::filesystem::path& state_dir, std::string_view command, bool wait,
                         const std::atomic<bool>& cancel) {
  fs.create_directories(state_dir, 0700);
  const auto path = fs.host_path(state_dir) / kRunLockFile;
  // open_file adds O_NOFOLLOW: a symlink planted at the lock's name must not make us
  // truncate its target.
  UniqueFd fd = fs.open_file(state_dir / kRunLockFile, O_RDWR | O_CREAT, 0600);
  if (!fd) throw Error(ExitCode::kState, "cannot open the run lock " + path.string() + ": " + util::errno_text(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw Error(ExitCode::kState, "the run lock " + path.string() + " is not a regular file");

  bool said = false;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK)
      throw Error(ExitCode::kState, "cannot lock " + path.string() + ": " + util::errno_text(errno));
    const auto holder = holder_of(fd.get());
    if (!wait)
      throw Error(ExitCode::kBusy, "another kasm-bootstrap is running here (" + holder + ", lock " + path.string() +
                                       "); nothing was changed. Wait for it, or pass --wait-lock");
    if (!said) log::info("waiting for the run lock {} held by {}", path.string(), holder);
    said = true;
    if (cancel.load()) throw Error(ExitCode::kInterrupted, "interrupted while waiting for the run lock");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const std::string who =
      "pid " + std::to_string(::getpid()) + " " + std::string(command) + " since " + util::utc_timestamp() + "\n";
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), who.data(), who.size(), 0) < 0)
    log::warn("cannot write the holder into {}: {}", path.string(), util::errno_text(errno));
  return RunLock(std::move(fd));
}

} // namespace kb::sys

#pragma once
// A real process that holds a dpkg-style lock (fcntl whole-file write lock) on a file,
// named "apt-get" in /proc/<pid>/comm so tests can check that waits name the holder.

#include "test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

extern char** environ; // NOLINT: POSIX

namespace kb::test {

class HeldLock {
public:
  // Holds `file` (created if missing) for `seconds`, then exits; negative = until destroyed.
  HeldLock(const std::filesystem::path& file, double seconds) {
    std::filesystem::create_directories(file.parent_path());
    const std::string code = "import fcntl, sys, time\n"
                             "open('/proc/self/comm', 'w').write('apt-get')\n"
                             "f = open(sys.argv[1], 'a')\n"
                             "fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
                             "print('LOCKED', flush=True)\n"
                             "s = float(sys.argv[2])\n"
                             "time.sleep(s if s >= 0 else 3600)\n";
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::string secs = std::to_string(seconds);
    std::string path = file.string();
    std::string py = "python3", dash_c = "-c";
    std::string code_copy = code;
    char* argv[] = {py.data(), dash_c.data(), code_copy.data(), path.data(), secs.data(), nullptr};
    const int rc = ::posix_spawnp(&pid_, "python3", &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    if (rc != 0) {
      ::close(out[0]);
      throw std::runtime_error("cannot start python3");
    }
    std::string got;
    pollfd p{out[0], POLLIN, 0};
    while (got.find('\n') == std::string::npos && ::poll(&p, 1, 10000) > 0) {
      char buf[64];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    if (got.rfind("LOCKED", 0) != 0) throw std::runtime_error("lock holder did not take the lock");
  }
  ~HeldLock() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;
  pid_t pid() const { return pid_; }

private:
  pid_t pid_ = -1;
};

} // namespace kb::test

#pragma once
// Real filesystems and real swap for the swap tests: mounts and swap areas made by one
// test and undone by its destructors, whatever the test's outcome.

#include "test_support.hpp"

#include <sys/swap.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace kb::test {

// A filesystem mounted for one test; unmounted on destruction (lazily if still busy).
// Loop mounts (-o loop) release their loop device when unmounted.
class ScopedMount {
public:
  ScopedMount(std::vector<std::string> mount_args, std::filesystem::path target) : target_(std::move(target)) {
    std::filesystem::create_directories(target_);
    std::vector<std::string> argv{"mount"};
    argv.insert(argv.end(), mount_args.begin(), mount_args.end());
    argv.push_back(target_.string());
    must_run(argv);
  }
  ~ScopedMount() {
    if (run_process({"umount", target_.string()}).exit_code != 0) run_process({"umount", "-l", target_.string()});
  }
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;
  const std::filesystem::path& path() const { return target_; }

private:
  std::filesystem::path target_;
};

// A swap file a test may have enabled on this host: swapped off and deleted on destruction.
class SwapGuard {
public:
  explicit SwapGuard(std::filesystem::path file) : file_(std::move(file)) {}
  ~SwapGuard() {
    ::swapoff(file_.c_str());
    ::unlink(file_.c_str());
  }
  SwapGuard(const SwapGuard&) = delete;
  SwapGuard& operator=(const SwapGuard&) = delete;

private:
  std::filesystem::path file_;
};

// Size in KiB that the host's /proc/swaps shows for `file`, or -1 when it is not active.
inline long long active_swap_kib(const std::filesystem::path& file) {
  const std::string text = read_file("/proc/swaps");
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    const std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    std::istringstream in(line);
    std::string name, type;
    long long kib = -1;
    in >> name >> type >> kib;
    if (name == file.string()) return kib;
  }
  return -1;
}

inline bool have_tool(const std::string& name) {
  return run_process({"sh", "-c", "command -v " + name}).exit_code == 0;
}

// Root, a loop device and the mkfs tool: everything a loop-mounted scratch fs needs.
inline bool can_loop_mount(const std::string& mkfs) {
  return running_as_root() && std::filesystem::exists("/dev/loop-control") && have_tool(mkfs);
}

// A sparse image file formatted with `mkfs_argv` (image path appended), loop-mounted at
// `mount_point`.
inline std::unique_ptr<ScopedMount> loop_filesystem(const std::filesystem::path& image, std::uint64_t size_mib,
                                                    std::vector<std::string> mkfs_argv,
                                                    const std::filesystem::path& mount_point) {
  must_run({"truncate", "-s", std::to_string(size_mib) + "M", image.string()});
  mkfs_argv.push_back(image.string());
  must_run(mkfs_argv);
  return std::make_unique<ScopedMount>(std::vector<std::string>{"-o", "loop", image.string()}, mount_point);
}

// Names in a directory, for "nothing was left behind".
inline std::vector<std::string> entries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

} // namespace kb::test

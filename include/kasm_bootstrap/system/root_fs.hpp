#pragma once
// Files of the machine being bootstrapped, always reached relative to a root directory:
// "/" in production, a temporary directory in tests. Callers speak in machine paths
// ("/etc/fstab"); only this class knows where they live on the host.
//
// The root is a real boundary, not a string prefix: every machine path is resolved by the
// kernel with openat2(RESOLVE_IN_ROOT) from a descriptor of the root (docs/platform.md),
// so a symlink inside the tree - absolute or through ".." - is resolved inside the root,
// as it would be on the machine itself after a chroot. A symlink whose target does not
// exist inside the root is refused (RootEscape) rather than created through. Files are
// created with openat(O_NOFOLLOW | O_EXCL) and renameat in a directory descriptor that was
// itself resolved inside the root; directories with a mkdirat chain.
//
// host_path() hands a resolved path to code that must pass a path on (exec, swapon,
// a unix socket, libcurl's CA file); everything else goes through the methods here.

#include "kasm_bootstrap/system/unique_fd.hpp"

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kb::sys {

struct FileOwner {
  uid_t uid = 0;
  gid_t gid = 0;
};

// How hard a commit tries. kDurable fsyncs the file and its directory, so the new content
// survives a power cut. kAtomicOnly just renames: readers still never see a half-written
// file, but a crash may bring back the previous version. Each fsync costs milliseconds,
// so progress snapshots that are rewritten moments later (status.json while steps run)
// use kAtomicOnly; anything a later run relies on (state, config, certificates) stays
// durable.
enum class Durability { kDurable, kAtomicOnly };

// Writes a temporary file beside the target and renames it over the target on commit().
// Destroyed without commit(), it removes the temporary file: a crash or an error never
// leaves a half-written target.
class AtomicFile {
public:
  // host_target's directory must exist; it is opened once and every later step (temp
  // file, rename, fsync) happens relative to that descriptor.
  AtomicFile(std::filesystem::path host_target, mode_t mode, Durability durability = Durability::kDurable);
  // In an already open directory (RootFs resolves it inside the root); `display` names
  // the target in errors.
  AtomicFile(int dir_fd, std::string name, std::filesystem::path display, mode_t mode,
             Durability durability = Durability::kDurable);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  void write(std::string_view data);
  void set_owner(FileOwner owner);
  void commit();
  int fd() const { return fd_; }

private:
  void create_temp(mode_t mode);

  int dir_fd_ = -1; // owned
  std::string name_;
  std::string temp_name_;
  std::filesystem::path target_; // for messages
  int fd_ = -1;
  bool committed_ = false;
  Durability durability_;
};

enum class FollowSymlinks { kYes, kNo };

// Why a file or stream was not read: what() is "<path> <reason>", reason() only the
// reason ("is a FIFO, not a regular file", "is larger than 1048576 bytes", "cannot open:
// Permission denied"). Never any of the content.
class InputRefused : public std::runtime_error {
public:
  InputRefused(const std::string& name, std::string reason)
      : std::runtime_error(name + " " + reason), reason_(std::move(reason)) {}
  const std::string& reason() const noexcept { return reason_; }

private:
  std::string reason_;
};

// The one way this tool reads a whole file: a regular file only (a FIFO, device,
// directory or socket is refused without blocking), at most `max_bytes`. nullopt when it
// does not exist; InputRefused otherwise. With FollowSymlinks::kNo a symlink is refused too.
std::optional<std::string> read_regular_file(const std::filesystem::path& host_path, std::size_t max_bytes,
                                             FollowSymlinks follow = FollowSymlinks::kYes);
// Reads a stream (stdin) to its end; InputRefused (named `what`) past `max_bytes`.
std::string read_bounded(std::istream& in, std::size_t max_bytes, const std::string& what);
// "a FIFO", "a directory"...: what a non-regular file is, for messages.
const char* file_type_name(mode_t mode);

// A machine path that would leave the root or that runs through a symlink with nothing
// inside the root at its end. what() names the path and the reason.
class RootEscape : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class RootFs {
public:
  explicit RootFs(const std::filesystem::path& root);

  const std::filesystem::path& root() const noexcept { return root_; }
  bool is_real_root() const noexcept { return root_ == "/"; }

  // Machine path -> the host path it resolves to, every symlink on the way (the last one
  // too) resolved inside the root; components that do not exist yet are appended as
  // given. Rejects relative paths and ".." components; RootEscape for a symlink that
  // resolves to nothing inside the root.
  std::filesystem::path host_path(const std::filesystem::path& machine_path) const;

  bool exists(const std::filesystem::path& machine_path) const;
  // lstat-like for the last component when follow is kNo; nullopt when nothing is there.
  std::optional<struct stat> stat(const std::filesystem::path& machine_path,
                                  FollowSymlinks follow = FollowSymlinks::kYes) const;
  // Opens (flags as for open(2), O_CLOEXEC added) the file itself, never a symlink in its
  // place (O_NOFOLLOW), in its directory resolved inside the root. An empty UniqueFd with
  // errno set like open(2) on failure.
  UniqueFd open_file(const std::filesystem::path& machine_path, int flags, mode_t mode = 0600) const;
  // The target of the symlink at machine_path, as stored (not resolved); nullopt when
  // there is no symlink there.
  std::optional<std::filesystem::path> read_link(const std::filesystem::path& machine_path) const;
  // nullopt when the file does not exist; throws std::system_error on other errors or
  // when the file is larger than max_bytes.
  std::optional<std::string> read_file(const std::filesystem::path& machine_path,
                                       std::size_t max_bytes = 16u << 20) const;
  void write_file_atomic(const std::filesystem::path& machine_path, std::string_view content, mode_t mode,
                         std::optional<FileOwner> owner = std::nullopt,
                         Durability durability = Durability::kDurable) const;
  void create_directories(const std::filesystem::path& machine_path, mode_t mode = 0755) const;
  void remove(const std::filesystem::path& machine_path) const;
  std::vector<std::string> list_directory(const std::filesystem::path& machine_path) const;

private:
  // The directory holding machine_path's last component, resolved inside the root (fd
  // empty when it does not exist), and that component's name.
  struct Parent {
    UniqueFd fd;
    std::string name;
  };
  UniqueFd open_root() const;
  Parent open_parent(const std::filesystem::path& machine_path) const;

  std::filesystem::path root_;
};

} // namespace kb::sys

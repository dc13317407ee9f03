#pragma once
// Files of the machine being bootstrapped, always reached relative to a root directory:
// "/" in production, a temporary directory in tests. Callers speak in machine paths
// ("/etc/fstab"); only this class knows where they live on the host. This is the one
// place that joins paths, so nothing can escape the root by accident.

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
  AtomicFile(std::filesystem::path host_target, mode_t mode, Durability durability = Durability::kDurable);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  void write(std::string_view data);
  void set_owner(FileOwner owner);
  void commit();
  const std::filesystem::path& temp_path() const { return temp_; }
  int fd() const { return fd_; }

private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
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

class RootFs {
public:
  explicit RootFs(const std::filesystem::path& root);

  const std::filesystem::path& root() const noexcept { return root_; }
  bool is_real_root() const noexcept { return root_ == "/"; }

  // Machine path -> host path. Rejects relative paths and ".." components.
  std::filesystem::path host_path(const std::filesystem::path& machine_path) const;

  bool exists(const std::filesystem::path& machine_path) const;
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
  std::filesystem::path root_;
};

} // namespace kb::sys

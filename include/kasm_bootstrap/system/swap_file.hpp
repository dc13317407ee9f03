#pragma once
// Creating and enabling a swap file on the host. Creation goes through a temporary file
// beside the target (AtomicFile), so a full disk, a read-only filesystem or an
// interrupt leaves nothing behind: the target appears only complete, with its header.

#include "kasm_bootstrap/system/swap_header.hpp"

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace kb::sys::swap {

enum class FsKind { kExt4, kXfs, kBtrfs, kTmpfs, kOther };

struct FsInfo {
  FsKind kind = FsKind::kOther;
  std::string name;   // "ext4", "xfs", "btrfs", "tmpfs", "fs 0x6969"
  std::string method; // how a swap file is allocated there, for the dry run
};

// statfs(2) of a host directory. Throws std::system_error when it cannot be examined.
FsInfo filesystem_at(const std::filesystem::path& host_dir);

// Bytes an unprivileged writer may still use there (statvfs f_bavail x f_frsize), the
// "Avail" column of df, so the dry run's numbers match what the operator sees.
std::uint64_t free_bytes_at(const std::filesystem::path& host_dir);

// The directory itself when it exists, else its nearest existing ancestor: the
// filesystem a not-yet-created directory would land on.
std::filesystem::path nearest_existing_dir(const std::filesystem::path& host_dir);

struct CreateRequest {
  std::filesystem::path host_path;
  std::string display_path; // machine path, for messages
  std::uint64_t size_bytes = 0;
  std::string label; // optional, at most 16 bytes
  const std::atomic<bool>* cancel = nullptr;
};

struct Created {
  std::string uuid;
  std::string filesystem;
  std::string method;
  std::uint64_t size_bytes = 0; // whole pages
};

// Throws kb::Error(ExitCode::kSwap) with the reason (no space, read-only, ...);
// the temporary file is removed and the target untouched on every failure.
Created create_swap_file(const CreateRequest& request);

// Header of an existing file, when it is a swap area whose size fits the file.
std::optional<HeaderInfo> read_swap_header(const std::filesystem::path& host_path);

enum class EnableResult { kEnabled, kAlreadyEnabled };
// swapon(2). Throws kb::Error(ExitCode::kSwap) explaining the errno.
EnableResult enable_swap(const std::filesystem::path& host_path, const std::string& display_path);
// swapoff(2); false (errno kept) when it fails.
bool disable_swap(const std::filesystem::path& host_path);

} // namespace kb::sys::swap

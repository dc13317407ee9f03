#pragma once
// Free space on a filesystem: the one statvfs() call the release, extraction and swap
// code share.

#include <cstdint>
#include <filesystem>
#include <optional>

namespace kb::sys {

// Bytes an unprivileged writer may still use on the filesystem holding `host_dir` (a
// real host path, already resolved under the root dir), or nullopt when statvfs(2)
// fails; errno then says why.
std::optional<std::uint64_t> free_bytes(const std::filesystem::path& host_dir);

} // namespace kb::sys

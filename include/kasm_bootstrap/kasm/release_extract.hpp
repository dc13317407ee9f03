#pragma once
// Unpacks the release tarball (gzip + tar only) into a fresh directory. Entries that are
// absolute, contain "..", would be written through a symlink, or are symlinks pointing
// outside the tree are refused, and the whole extraction with them: nothing is left
// behind but the untouched archive.

#include <cstdint>
#include <filesystem>

namespace kb::kasm {

struct ExtractResult {
  std::filesystem::path dir;
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
};

// `target` (host path) must not exist; it is built as a temporary sibling and renamed
// into place when complete, so it either holds the whole archive or is absent.
// Throws kb::Error(kRelease) naming the archive, the entry and the reason.
ExtractResult extract_tar_gz(const std::filesystem::path& archive, const std::filesystem::path& target);

// Unpacked size from the gzip trailer (ISIZE, size mod 2^32, corrected upward for
// archives that compress past 4 GiB): a cheap estimate for the disk-space check.
std::uint64_t estimated_unpacked_size(const std::filesystem::path& archive);

} // namespace kb::kasm

#pragma once
// Parallel ranged download, the part of download_verified (release_download.hpp) that
// fetches [offset, size) of the release over several connections, as tools that fill an
// instance's network pipe from S3 do (one S3 connection is capped far below it).
//
// The file is cut into pieces of DownloadRequest::piece_bytes; each connection takes the
// next piece and asks for exactly it ("Range: bytes=A-B"), writes it into the partial
// file at its offset, and resumes a dropped piece from its last byte. The SHA-256 is
// still computed in file order while the download runs: a finished piece is held in
// memory until every piece before it is hashed, and a connection never starts a piece
// more than `connections` pieces ahead of the hashing, so at most connections + 1 pieces
// are held. Nothing is read back from disk.
//
// While pieces past the hashed prefix are on disk, "<partial>.frontier" records how far
// the file is hashed and contiguous: a run killed midway resumes from there (the rest of
// the partial file is cut off), never from the partial file's length.

#include "kasm_bootstrap/kasm/download_progress.hpp"
#include "kasm_bootstrap/kasm/release_download.hpp"
#include "kasm_bootstrap/util/sha256.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>

namespace kb::kasm {

// The release's length when the server says (HEAD) that it serves byte ranges and the
// release is at least two pieces long; nullopt otherwise (one stream is then as good).
std::optional<std::uint64_t> ranged_download_size(const DownloadRequest& request);

struct RangedTransfer {
  const DownloadRequest& request;
  int fd;                               // the partial file, open for writing
  const std::filesystem::path& partial; // its name, for messages and the frontier record
  std::uint64_t offset;                 // [0, offset) is on disk and already in `hasher`
  std::uint64_t size;                   // the whole release
  util::Sha256& hasher;                 // fed in file order
  DownloadProgress& progress;
  std::chrono::steady_clock::time_point deadline;
};

enum class RangedOutcome {
  kComplete,      // [0, size) on disk and hashed
  kRangesIgnored, // the server answered a range with the whole file: go on with one stream
                  // from `hashed_bytes` (everything before it is hashed and on disk)
};

struct RangedResult {
  RangedOutcome outcome = RangedOutcome::kComplete;
  std::uint64_t hashed_bytes = 0; // contiguous, hashed prefix
  std::uint64_t fetched = 0;      // bytes that came over the network
  int attempts = 0;               // ranged GETs sent
};

// Throws kb::Error(kRelease) naming the range and the reason (the partial file and its
// frontier record stay for the next run), kInterrupted on cancel.
RangedResult download_ranges(const RangedTransfer& transfer);

// The frontier record of a partial file: "<partial>.frontier".
std::filesystem::path frontier_path(const std::filesystem::path& partial);
// The hashed prefix a killed ranged download left, or nullopt when there is no record.
// A record that cannot be read or parsed gives 0 (start over).
std::optional<std::uint64_t> read_frontier(const std::filesystem::path& partial);

} // namespace kb::kasm

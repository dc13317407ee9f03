#pragma once
// The release download: streamed to a ".partial" file in the cache, hashed as the bytes
// arrive, resumed with Range after a dropped connection, retried with backoff, and
// renamed into place only once the SHA-256 matches. A cached file with the right digest
// is used without touching the network.

#include "kasm_bootstrap/net/http_client.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace kb::kasm {

struct DownloadRequest {
  std::string url;
  std::string expected_sha256;  // hex; empty = accept any content (a warning is logged)
  std::filesystem::path target; // host path of the finished file; "<target>.partial" while in flight
  std::string ca_bundle;        // host path; empty = HttpClient's discovery on "/"
  bool allow_insecure_http = false;
  std::chrono::milliseconds deadline{1'800'000}; // the whole download, all attempts
  std::chrono::milliseconds connect_timeout{10'000};
  // A connection slower than this for this long is dropped and resumed.
  long low_speed_bytes = 1024;
  std::chrono::seconds low_speed_window{30};
  int max_attempts = 8;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30'000};
  std::chrono::milliseconds progress_interval{5000};
  bool progress_bar = false; // redraw a bar on stderr (only when it is a terminal)
  const std::atomic<bool>* cancel = nullptr;
};

struct DownloadResult {
  std::filesystem::path path;
  std::string sha256;
  bool from_cache = false;
  std::uint64_t size = 0;
  std::uint64_t fetched = 0;      // bytes that came over the network in this call
  std::uint64_t resumed_from = 0; // bytes of an earlier partial file that were kept
  int attempts = 0;
};

// Throws kb::Error(kRelease) with the URL and the reason; kInterrupted on cancel.
DownloadResult download_verified(const net::HttpClient& http, const DownloadRequest& request);

// SHA-256 of a file, streamed; nullopt when it does not exist.
std::optional<std::string> file_sha256(const std::filesystem::path& path);

// Lower-cased and trimmed, for comparing digests written in either case.
std::string normalize_digest(std::string digest);

} // namespace kb::kasm

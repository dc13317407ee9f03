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
  // More than 1: parallel ranged GETs over this many connections when the server says it
  // serves byte ranges (HEAD: Accept-Ranges: bytes and a length of at least two pieces);
  // else, or when it then ignores Range, one stream (kasm/ranged_download.hpp).
  int connections = 1;
  std::uint64_t piece_bytes = std::uint64_t{4} << 20; // one ranged GET; at most connections + 1 held in memory
};

// The pause before retry number `failures` (1, 2, ...): exponential from
// initial_backoff up to max_backoff, with jitter, so a fleet booted together does not
// retry in step. Both download paths use it.
std::chrono::milliseconds download_backoff(const DownloadRequest& request, int failures);

// The GET both download paths send: the request's connect timeout, low-speed limit and
// CA bundle, the time left until `deadline` as its total timeout, from byte `from`.
net::HttpRequest download_http_request(const DownloadRequest& request, std::chrono::steady_clock::time_point deadline,
                                       std::uint64_t from);

// 4xx other than "try again later" will not change by asking again.
bool download_status_is_retryable(long status);

struct DownloadResult {
  std::filesystem::path path;
  std::string sha256;
  bool from_cache = false;
  std::uint64_t size = 0;
  std::uint64_t fetched = 0;      // bytes that came over the network in this call
  std::uint64_t resumed_from = 0; // bytes of an earlier partial file that were kept
  int attempts = 0;
  int connections = 1; // how many the download used: 1 when the server would not serve ranges
};

// Throws kb::Error(kRelease) with the URL and the reason; kInterrupted on cancel.
DownloadResult download_verified(const net::HttpClient& http, const DownloadRequest& request);

// SHA-256 of a file, streamed; nullopt when it does not exist.
std::optional<std::string> file_sha256(const std::filesystem::path& path);

// Lower-cased and trimmed, for comparing digests written in either case.
std::string normalize_digest(std::string digest);

} // namespace kb::kasm

#include "kasm_bootstrap/kasm/release_download.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/download_progress.hpp"
#include "kasm_bootstrap/kasm/hashing_file_sink.hpp"
#include "kasm_bootstrap/kasm/ranged_download.hpp"
#include "kasm_bootstrap/system/disk_space.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"
#include "kasm_bootstrap/util/interruptible_sleep.hpp"
#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/util/sha256.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <random>

namespace kb::kasm {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using util::errno_text;

[[noreturn]] void fail(const std::string& message) { throw Error(ExitCode::kRelease, message); }

std::string url_scheme(const std::string& url) {
  const auto colon = url.find("://");
  if (colon == std::string::npos) return {};
  std::string scheme = url.substr(0, colon);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  return scheme;
}

std::string transport_error_name(net::TransportError e) {
  switch (e) {
  case net::TransportError::kNone: return "ok";
  case net::TransportError::kConnect: return "connection failed";
  case net::TransportError::kTimeout: return "timed out or too slow";
  case net::TransportError::kTls: return "TLS failure";
  case net::TransportError::kResolve: return "name did not resolve";
  case net::TransportError::kAborted: return "aborted";
  case net::TransportError::kProtocol: return "connection dropped or broken reply";
  case net::TransportError::kOther: return "transfer failed";
  }
  return "transfer failed";
}

void fsync_directory(const fs::path& dir) {
  sys::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) ::fsync(fd.get());
}

// Hashes what an earlier run left in the partial file, so the digest still covers every
// byte while only the missing ones come over the network.
void hash_existing(int fd, std::uint64_t size, util::Sha256& hasher, const fs::path& path) {
  std::unique_ptr<char[]> buf(new char[1 << 20]);
  std::uint64_t off = 0;
  while (off < size) {
    const ssize_t n = ::pread(fd, buf.get(), 1 << 20, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot read partial download " + path.string() + ": " + errno_text(errno));
    hasher.update(std::string_view(buf.get(), static_cast<std::size_t>(n)));
    off += static_cast<std::uint64_t>(n);
  }
}

} // namespace

bool download_status_is_retryable(long status) {
  return status >= 500 || status == 408 || status == 425 || status == 429;
}

net::HttpRequest download_http_request(const DownloadRequest& request, Clock::time_point deadline, std::uint64_t from) {
  net::HttpRequest req;
  req.url = request.url;
  req.connect_timeout = request.connect_timeout;
  req.total_timeout = std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
  req.low_speed_bytes = request.low_speed_bytes;
  req.low_speed_window = request.low_speed_window;
  req.ca_bundle = request.ca_bundle;
  req.resume_from = from;
  return req;
}

milliseconds download_backoff(const DownloadRequest& r, int failures) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  double base = static_cast<double>(r.initial_backoff.count());
  for (int i = 1; i < failures && base < static_cast<double>(r.max_backoff.count()); ++i)
    base *= 2;
  base = std::min(base, static_cast<double>(r.max_backoff.count()));
  // Full-range jitter in [base/2, base]: a fleet booted together must not retry in step.
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return milliseconds(static_cast<long long>(base * jitter(rng)));
}

std::string normalize_digest(std::string digest) {
  while (!digest.empty() && std::isspace(static_cast<unsigned char>(digest.back())))
    digest.pop_back();
  while (!digest.empty() && std::isspace(static_cast<unsigned char>(digest.front())))
    digest.erase(0, 1);
  std::transform(digest.begin(), digest.end(), digest.begin(), [](unsigned char c) { return std::tolower(c); });
  return digest;
}

std::optional<std::string> file_sha256(const fs::path& path) {
  sys::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::nullopt;
    fail("cannot read " + path.string() + ": " + errno_text(errno));
  }
  util::Sha256 hasher;
  std::unique_ptr<char[]> buf(new char[1 << 20]);
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf.get(), 1 << 20);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read " + path.string() + ": " + errno_text(errno));
    if (n == 0) break;
    hasher.update(std::string_view(buf.get(), static_cast<std::size_t>(n)));
  }
  return hasher.hex_digest();
}

DownloadResult download_verified(const net::HttpClient& http, const DownloadRequest& request) {
  const std::string expected = normalize_digest(request.expected_sha256);
  const std::string scheme = url_scheme(request.url);
  if (scheme == "http" && !request.allow_insecure_http)
    fail("refusing to download " + request.url + " over plain http (set allow_insecure_http to allow it)");
  if (scheme != "https" && scheme != "http") fail("release URL '" + request.url + "' is not an http(s) URL");

  DownloadResult result;
  result.path = request.target;

  if (auto cached = file_sha256(request.target)) {
    if (expected.empty() || *cached == expected) {
      std::error_code ec;
      result.sha256 = *cached;
      result.size = fs::file_size(request.target, ec);
      result.from_cache = true;
      log::info("release: using cached {} (sha256 {}), no download", request.target.string(), *cached);
      return result;
    }
    log::warn("release: cached {} has sha256 {}, expected {}; deleting it and downloading again",
              request.target.string(), *cached, expected);
    fs::remove(request.target);
  }
  if (expected.empty()) log::warn("release: no release_sha256 configured; the download cannot be verified");

  const fs::path dir = request.target.parent_path();
  const fs::path partial = request.target.string() + ".partial";
  sys::UniqueFd fd(::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) fail("cannot create " + partial.string() + ": " + errno_text(errno));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
    fail("another process is downloading into " + partial.string() + " right now");

  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail("cannot stat " + partial.string() + ": " + errno_text(errno));
  std::uint64_t offset = static_cast<std::uint64_t>(st.st_size);
  // A ranged download that was killed left pieces past its hashed prefix: only the prefix
  // its record names is contiguous, the rest goes.
  if (const auto frontier = read_frontier(partial)) {
    const std::uint64_t keep = std::min(*frontier, offset);
    if (::ftruncate(fd.get(), static_cast<off_t>(keep)) != 0)
      fail("cannot truncate " + partial.string() + ": " + errno_text(errno));
    offset = keep;
    std::error_code ec;
    fs::remove(frontier_path(partial), ec);
  }
  auto hasher = std::make_unique<util::Sha256>();
  if (offset > 0) {
    hash_existing(fd.get(), offset, *hasher, partial);
    log::info("release: resuming {} from {} already on disk", partial.string(),
              human_bytes(static_cast<double>(offset)));
  }
  if (::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
    fail("cannot seek in " + partial.string() + ": " + errno_text(errno));
  result.resumed_from = offset;
  HashingFileSink sink(fd.get(), *hasher);

  const auto start = Clock::now();
  const auto deadline = start + request.deadline;
  DownloadProgress progress("release download", request.progress_interval,
                            request.progress_bar && ::isatty(STDERR_FILENO));
  std::string last_failure;
  std::optional<std::string> final_digest;
  int failures = 0;
  int stream_attempts = 0;

  // Parallel ranged GETs when asked for and the server serves ranges; one stream then
  // only finishes what a server that ignored Range left (from the hashed prefix).
  bool complete = false;
  if (const auto size = ranged_download_size(request); size && offset < *size) {
    log::info("release: {} over {} connections ({} pieces of {})", human_bytes(static_cast<double>(*size - offset)),
              request.connections, (*size - offset + request.piece_bytes - 1) / request.piece_bytes,
              human_bytes(static_cast<double>(request.piece_bytes)));
    const RangedTransfer transfer{request, fd.get(), partial, offset, *size, *hasher, progress, deadline};
    RangedResult ranged;
    try {
      ranged = download_ranges(transfer);
    } catch (const Error& e) {
      if (e.code() != ExitCode::kInterrupted &&
          std::string_view(e.what()).find("cannot write") != std::string_view::npos)
        ::unlink(partial.c_str()); // a full disk: the partial only takes space the machine needs
      throw;
    }
    result.fetched += ranged.fetched;
    result.attempts += ranged.attempts;
    offset = ranged.hashed_bytes;
    if (ranged.outcome == RangedOutcome::kComplete) {
      complete = true;
      result.connections = request.connections;
    } else {
      log::warn("release: the server answered a range with the whole file (it ignores Range); one stream from "
                "byte {}",
                offset);
      if (::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
        fail("cannot seek in " + partial.string() + ": " + errno_text(errno));
    }
  }

  auto restart_from_zero = [&] {
    // The sink lets go of the old hasher (and drops what it had not written) before the
    // file is cut and the old hasher goes.
    auto fresh = std::make_unique<util::Sha256>();
    sink.restart(*fresh);
    hasher = std::move(fresh);
    if (::ftruncate(fd.get(), 0) != 0 || ::lseek(fd.get(), 0, SEEK_SET) < 0)
      fail("cannot truncate " + partial.string() + ": " + errno_text(errno));
    offset = 0;
    result.resumed_from = 0;
  };

  while (!complete) {
    if (request.cancel && request.cancel->load()) throw Error(ExitCode::kInterrupted, "release download interrupted");
    const auto now = Clock::now();
    if (now >= deadline)
      fail(fmt::format("release download from {} did not finish within {} s{}", request.url,
                       std::chrono::duration_cast<std::chrono::seconds>(request.deadline).count(),
                       last_failure.empty() ? "" : " (last problem: " + last_failure + ")"));
    if (stream_attempts >= request.max_attempts)
      fail(fmt::format("release download from {} failed after {} attempts: {}", request.url, stream_attempts,
                       last_failure));
    ++stream_attempts;
    ++result.attempts;

    const std::uint64_t attempt_offset = offset;
    long status = 0;
    bool accepting = false;
    bool space_checked = false;
    std::string local_error; // disk problems: not worth a retry
    std::uint64_t expected_total = 0;

    net::HttpRequest req = download_http_request(request, deadline, attempt_offset);
    req.abort = request.cancel;
    req.on_status = [&](long s) {
      status = s;
      accepting = attempt_offset == 0 ? s == 200 : s == 206;
      return accepting;
    };
    req.on_progress = [&](std::uint64_t, std::uint64_t total) {
      if (total == 0 || space_checked) return;
      space_checked = true;
      expected_total = attempt_offset + total;
      const auto avail = sys::free_bytes(dir).value_or(UINT64_MAX); // unknown: let write() report it
      if (avail < total)
        local_error = fmt::format("not enough disk space in {} for the release: {} more needed, {} free", dir.string(),
                                  human_bytes(static_cast<double>(total)), human_bytes(static_cast<double>(avail)));
    };
    req.on_body = [&](std::string_view chunk) {
      if (!local_error.empty() || (request.cancel && request.cancel->load())) return false;
      try {
        sink.append(chunk); // hashed and written on the sink's thread
      } catch (const std::system_error& e) {
        local_error = "cannot write " + partial.string() + ": " + e.code().message();
        return false;
      }
      offset += chunk.size();
      result.fetched += chunk.size();
      progress.update(offset, expected_total, result.fetched);
      return true;
    };

    if (attempt_offset > 0) log::info("release: requesting {} from byte {}", request.url, attempt_offset);
    const auto response = http.send(req);
    // What arrived is good data even when the transfer failed: the next Range starts after it.
    try {
      sink.flush();
    } catch (const std::system_error& e) {
      ::unlink(partial.c_str()); // a disk too full to finish it: the partial only takes space the machine needs
      fail("cannot write " + partial.string() + ": " + e.code().message());
    }
    if (response.ok() && accepting) break;
    if (response.ok() && response.bytes_received == 0 && status == 0 &&
        (response.status == 200 || response.status == 206)) {
      break; // empty body (or nothing left to fetch): nothing reached on_status
    }

    if (!local_error.empty()) {
      // Disk problems are not retried, so the partial could only be resumed once space is
      // freed; until then it takes space the machine needs.
      ::unlink(partial.c_str());
      fail(local_error);
    }
    if (request.cancel && request.cancel->load()) throw Error(ExitCode::kInterrupted, "release download interrupted");

    const long final_status = status != 0 ? status : response.status;
    const bool range_refused = attempt_offset > 0 && (final_status == 200 || final_status == 416 ||
                                                      response.error_message.find("byte ranges") != std::string::npos);
    if (final_status == 416 && !expected.empty()) {
      // A run that died between the last byte and the rename left a complete file behind.
      auto digest = hasher->hex_digest();
      if (digest == expected) {
        final_digest = std::move(digest);
        break;
      }
      restart_from_zero();
      last_failure = "the partial file did not match the server's";
      continue;
    }
    if (range_refused) {
      log::warn("release: the server did not resume at byte {} (HTTP {}); starting over", attempt_offset, final_status);
      last_failure = "the server would not resume the download";
      restart_from_zero();
      continue;
    }
    if (final_status >= 300 && final_status != 206 && final_status != 200) {
      last_failure = fmt::format("HTTP {} from {}", final_status, request.url);
      if (!download_status_is_retryable(final_status)) fail("release download failed: " + last_failure);
    } else if (response.error == net::TransportError::kTls) {
      fail(fmt::format("release download failed: TLS problem with {} (CA bundle: {}): {}", request.url,
                       request.ca_bundle.empty() ? "system default" : request.ca_bundle, response.error_message));
    } else {
      last_failure = transport_error_name(response.error) + ": " + response.error_message;
    }

    ++failures;
    const auto delay = download_backoff(request, failures);
    log::warn("release: attempt {} failed ({}); {} kept, retrying in {:.1f} s", result.attempts, last_failure,
              human_bytes(static_cast<double>(offset)), static_cast<double>(delay.count()) / 1000.0);
    if (Clock::now() + delay >= deadline)
      fail(fmt::format("release download from {} did not finish within {} s (last problem: {})", request.url,
                       std::chrono::duration_cast<std::chrono::seconds>(request.deadline).count(), last_failure));
    util::interruptible_sleep(delay, request.cancel);
  }
  progress.finish();

  if (::fsync(fd.get()) != 0) fail("cannot fsync " + partial.string() + ": " + errno_text(errno));
  const std::string actual = final_digest ? *final_digest : hasher->hex_digest();
  if (!expected.empty() && actual != expected) {
    ::unlink(partial.c_str());
    fail(fmt::format("release checksum mismatch for {}: expected sha256 {}, got {} ({} bytes); the download was "
                     "deleted",
                     request.url, expected, actual, offset));
  }
  if (::rename(partial.c_str(), request.target.c_str()) != 0)
    fail("cannot move the download into place at " + request.target.string() + ": " + errno_text(errno));
  fsync_directory(dir);

  result.sha256 = actual;
  result.size = offset;
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  log::info("release: downloaded {} in {:.1f} s ({}/s, {} attempt{}), sha256 {}",
            human_bytes(static_cast<double>(result.fetched)), secs,
            human_bytes(secs > 0 ? static_cast<double>(result.fetched) / secs : 0), result.attempts,
            result.attempts == 1 ? "" : "s", actual);
  return result;
}

} // namespace kb::kasm

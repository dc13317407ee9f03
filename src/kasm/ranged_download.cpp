#include "kasm_bootstrap/kasm/ranged_download.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/net/http_client.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"
#include "kasm_bootstrap/util/interruptible_sleep.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace kb::kasm {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Piece {
  std::uint64_t first = 0; // offset of its first byte in the file
  std::uint64_t length = 0;
  std::uint64_t received = 0;
  std::string data; // what arrived, until the hasher takes it
  bool complete = false;
};

void pwrite_all(int fd, std::string_view data, std::uint64_t offset) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category());
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
}

// "<partial>.frontier" holds the hashed, contiguous prefix as decimal text; replaced by
// rename, so a reader sees an old or a new value, never half of one.
void write_frontier(const fs::path& partial, std::uint64_t hashed) {
  const auto target = frontier_path(partial);
  const auto temp = fs::path(target.string() + ".tmp");
  sys::UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) throw Error(ExitCode::kRelease, "cannot write " + temp.string() + ": " + util::errno_text(errno));
  const std::string text = std::to_string(hashed) + "\n";
  try {
    pwrite_all(fd.get(), text, 0);
  } catch (const std::system_error& e) {
    throw Error(ExitCode::kRelease, "cannot write " + temp.string() + ": " + e.code().message());
  }
  if (::rename(temp.c_str(), target.c_str()) != 0)
    throw Error(ExitCode::kRelease, "cannot write " + target.string() + ": " + util::errno_text(errno));
}

// "bytes A-B/SIZE", as RFC 9110 §14.4 writes a satisfied single range.
bool content_range_is(const std::optional<std::string>& header, std::uint64_t first, std::uint64_t last,
                      std::uint64_t size) {
  return header && *header == fmt::format("bytes {}-{}/{}", first, last, size);
}

class RangedDownload {
public:
  explicit RangedDownload(const RangedTransfer& t) : t_(t), r_(t.request) {
    const std::uint64_t piece = std::max<std::uint64_t>(r_.piece_bytes, 1);
    for (std::uint64_t first = t.offset; first < t.size; first += piece)
      pieces_.push_back(Piece{first, std::min(piece, t.size - first), 0, {}, false});
    connections_ = static_cast<std::size_t>(std::clamp(r_.connections, 1, 64));
    connections_ = std::min(connections_, pieces_.size());
  }

  RangedResult run() {
    RangedResult result;
    write_frontier(t_.partial, t_.offset); // before any byte past the hashed prefix is written
    std::uint64_t hashed = t_.offset;
    std::uint64_t recorded = hashed;
    {
      std::vector<std::jthread> workers;
      workers.reserve(connections_);
      for (std::size_t i = 0; i < connections_; ++i)
        workers.emplace_back([this] { work(); });

      std::unique_lock lock(mutex_);
      while (frontier_ < pieces_.size()) {
        changed_.wait_for(lock, milliseconds(100), [&] { return stop_ || pieces_[frontier_].complete; });
        if (r_.cancel && r_.cancel->load()) {
          fail_locked(ExitCode::kInterrupted, "release download interrupted");
        }
        if (stop_) break;
        while (frontier_ < pieces_.size() && pieces_[frontier_].complete) {
          std::string data = std::move(pieces_[frontier_].data);
          const auto& done = pieces_[frontier_];
          lock.unlock();
          t_.hasher.update(data);
          hashed += data.size();
          // Start writing the piece back now, so the final fsync has little left to do.
          ::sync_file_range(t_.fd, static_cast<off_t>(done.first), static_cast<off_t>(done.length),
                            SYNC_FILE_RANGE_WRITE);
          data.clear();
          lock.lock();
          pool_.push_back(std::move(data));
          ++frontier_;
          changed_.notify_all(); // the window moved: a connection may start the next piece
        }
        lock.unlock();
        // Every 64 MiB: the record costs a rename, a killed run re-fetches at most this much.
        if (hashed - recorded >= (std::uint64_t{64} << 20)) {
          write_frontier(t_.partial, hashed);
          recorded = hashed;
        }
        t_.progress.update(hashed, t_.size, fetched_.load());
        lock.lock();
      }
      stop_ = true;
      stop_flag_.store(true);
      changed_.notify_all();
    } // the jthreads join here; each ends its transfer within about 100 ms (HttpRequest::abort)

    result.hashed_bytes = hashed;
    result.fetched = fetched_.load();
    result.attempts = attempts_.load();
    if (failure_) {
      if (hashed != recorded) write_frontier(t_.partial, hashed);
      throw Error(failure_code_, *failure_);
    }
    if (ranges_ignored_) {
      result.outcome = RangedOutcome::kRangesIgnored;
      // One stream goes on from the hashed prefix: the rest of the file is cut off, and so
      // the record is no longer needed.
      if (::ftruncate(t_.fd, static_cast<off_t>(hashed)) != 0)
        throw Error(ExitCode::kRelease, "cannot truncate " + t_.partial.string() + ": " + util::errno_text(errno));
    }
    std::error_code ec;
    fs::remove(frontier_path(t_.partial), ec);
    return result;
  }

private:
  void fail_locked(ExitCode code, std::string message) {
    if (!failure_) {
      failure_ = std::move(message);
      failure_code_ = code;
    }
    stop_ = true;
    stop_flag_.store(true);
    changed_.notify_all();
  }

  void work() {
    net::HttpSession session; // one connection, kept alive from piece to piece
    for (;;) {
      Piece* piece = nullptr;
      {
        std::unique_lock lock(mutex_);
        // Not more than `connections_` pieces ahead of the hashing: bounded memory.
        changed_.wait(lock, [&] { return stop_ || next_ >= pieces_.size() || next_ < frontier_ + connections_ + 1; });
        if (stop_ || next_ >= pieces_.size()) return;
        piece = &pieces_[next_++];
        // A buffer from the pool: allocated once per slot of the window, so memory stays
        // flat (fresh multi-MiB allocations in each thread would pile up in malloc arenas).
        if (!pool_.empty()) {
          piece->data = std::move(pool_.back());
          pool_.pop_back();
        }
        piece->data.reserve(piece->length);
      }
      try {
        const bool served = fetch(*piece, session);
        std::lock_guard lock(mutex_);
        if (!served) {
          ranges_ignored_ = true;
          stop_ = true;
          stop_flag_.store(true);
        } else if (!stop_) {
          piece->complete = true;
        }
        changed_.notify_all();
        if (!served) return;
      } catch (const Error& e) {
        std::lock_guard lock(mutex_);
        fail_locked(e.code(), e.what());
        return;
      }
    }
  }

  // Fetches one piece, resuming after a dropped connection from its last byte. False when
  // the server answered with the whole file instead of the range (it ignores Range).
  bool fetch(Piece& piece, net::HttpSession& session) {
    const std::uint64_t last = piece.first + piece.length - 1;
    int failures = 0;
    std::string last_failure;
    while (piece.received < piece.length) {
      if (stop_flag_.load()) return true;
      const auto now = Clock::now();
      if (now >= t_.deadline)
        throw Error(ExitCode::kRelease,
                    fmt::format("release download from {} did not finish within {} s{}", r_.url,
                                std::chrono::duration_cast<std::chrono::seconds>(r_.deadline).count(),
                                last_failure.empty() ? "" : " (last problem: " + last_failure + ")"));
      const std::uint64_t from = piece.first + piece.received;
      const std::uint64_t kept = piece.received;
      long status = 0;
      bool too_long = false;
      std::string disk_error;

      net::HttpRequest req = download_http_request(r_, t_.deadline, from);
      req.range_last = last;
      req.abort = &stop_flag_;
      req.on_status = [&](long s) {
        status = s;
        return s == 206;
      };
      req.on_body = [&](std::string_view chunk) {
        if (piece.received + chunk.size() > piece.length) {
          too_long = true;
          return false;
        }
        try {
          pwrite_all(t_.fd, chunk, piece.first + piece.received);
        } catch (const std::system_error& e) {
          disk_error = "cannot write " + t_.partial.string() + ": " + e.code().message();
          return false;
        }
        piece.data.append(chunk);
        piece.received += chunk.size();
        fetched_ += chunk.size();
        return true;
      };
      ++attempts_;
      const auto response = session.send(req);
      if (!disk_error.empty()) throw Error(ExitCode::kRelease, disk_error);
      if (stop_flag_.load()) return true;
      const long final_status = status != 0 ? status : response.status;
      if (final_status == 200) return false;

      const auto range_text = fmt::format("bytes {}-{}", from, last);
      const bool wrong_range =
          final_status == 206 && !content_range_is(response.header("content-range"), from, last, t_.size);
      if (too_long || wrong_range) {
        // A reply that is not the range asked for cannot be trusted in any part.
        piece.received = kept;
        piece.data.resize(kept);
        last_failure =
            too_long ? fmt::format("the server sent more than the {} bytes of range {}", last - from + 1, range_text)
                     : fmt::format("the server answered range {} with Content-Range '{}'", range_text,
                                   response.header("content-range").value_or("(none)"));
      } else if (response.ok() && piece.received == piece.length) {
        return true;
      } else if (response.ok()) {
        last_failure = fmt::format("the server ended range {} after {} of its {} bytes", range_text,
                                   piece.received - kept, last - from + 1);
      } else if (final_status >= 300 && final_status != 206) {
        last_failure = fmt::format("HTTP {} for range {} of {}", final_status, range_text, r_.url);
        if (!download_status_is_retryable(final_status))
          throw Error(ExitCode::kRelease, "release download failed: " + last_failure);
      } else if (response.error == net::TransportError::kTls) {
        throw Error(ExitCode::kRelease,
                    fmt::format("release download failed: TLS problem with {}: {}", r_.url, response.error_message));
      } else {
        last_failure = fmt::format("range {}: {}", range_text, response.error_message);
      }

      ++failures;
      if (failures >= r_.max_attempts)
        throw Error(ExitCode::kRelease, fmt::format("release download from {} failed: range {} failed {} times: {}",
                                                    r_.url, range_text, failures, last_failure));
      const auto delay = download_backoff(r_, failures);
      log::warn("release: {} ({} of the piece kept); retrying in {:.1f} s", last_failure,
                human_bytes(static_cast<double>(piece.received)), static_cast<double>(delay.count()) / 1000.0);
      util::interruptible_sleep(delay, &stop_flag_);
    }
    return true;
  }

  const RangedTransfer& t_;
  const DownloadRequest& r_;
  std::vector<Piece> pieces_; // never resized once the workers run
  std::size_t connections_ = 1;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> pool_; // emptied buffers, capacity kept
  std::size_t next_ = 0;          // the next piece a connection takes
  std::size_t frontier_ = 0;      // the first piece not yet hashed
  bool stop_ = false;
  bool ranges_ignored_ = false;
  std::optional<std::string> failure_;
  ExitCode failure_code_ = ExitCode::kRelease;

  std::atomic<bool> stop_flag_{false}; // stop_, readable without the lock (libcurl's callbacks)
  std::atomic<std::uint64_t> fetched_{0};
  std::atomic<int> attempts_{0};
};

} // namespace

fs::path frontier_path(const fs::path& partial) { return partial.string() + ".frontier"; }

std::optional<std::uint64_t> read_frontier(const fs::path& partial) {
  const auto path = frontier_path(partial);
  std::optional<std::string> text;
  try {
    text = sys::read_regular_file(path, 64);
  } catch (const std::exception&) {
    return std::uint64_t{0}; // not a regular file, or too long: not ours to trust
  }
  if (!text) return std::nullopt;
  std::uint64_t value = 0;
  const auto* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, value);
  if (ec != std::errc() || ptr == text->data() || (ptr != end && std::string_view(ptr, end) != "\n"))
    return std::uint64_t{0};
  return value;
}

std::optional<std::uint64_t> ranged_download_size(const DownloadRequest& request) {
  if (request.connections <= 1) return std::nullopt;
  net::HttpRequest head;
  head.method = "HEAD";
  head.url = request.url;
  head.connect_timeout = request.connect_timeout;
  head.total_timeout = std::max(request.connect_timeout * 2, milliseconds(5000));
  head.ca_bundle = request.ca_bundle;
  head.abort = request.cancel;
  const auto response = net::HttpSession().send(head);
  if (!response.ok() || response.status != 200) return std::nullopt;
  const auto ranges = response.header("accept-ranges");
  const auto length = response.header("content-length");
  if (!ranges || *ranges != "bytes" || !length) return std::nullopt;
  std::uint64_t size = 0;
  const auto [ptr, ec] = std::from_chars(length->data(), length->data() + length->size(), size);
  if (ec != std::errc() || ptr != length->data() + length->size()) return std::nullopt;
  if (size < 2 * std::max<std::uint64_t>(request.piece_bytes, 1)) return std::nullopt;
  return size;
}

RangedResult download_ranges(const RangedTransfer& transfer) { return RangedDownload(transfer).run(); }

} // namespace kb::kasm

#pragma once
// Progress of a long download: a log line every few seconds (bytes, rate, ETA) so
// cloud-init's log shows that something is happening, and a redrawn bar when stderr is a
// terminal for someone running the tool by hand.

#include <chrono>
#include <cstdint>
#include <string>

namespace kb::kasm {

class DownloadProgress {
public:
  using Clock = std::chrono::steady_clock;

  DownloadProgress(std::string what, std::chrono::milliseconds log_interval, bool draw_bar);
  ~DownloadProgress();
  DownloadProgress(const DownloadProgress&) = delete;
  DownloadProgress& operator=(const DownloadProgress&) = delete;

  // `done` counts the whole file (including bytes resumed from disk); `total` is 0 while
  // unknown. `fetched` counts only bytes that came over the network in this run.
  void update(std::uint64_t done, std::uint64_t total, std::uint64_t fetched);
  void finish();

private:
  void clear_bar();

  std::string what_;
  std::chrono::milliseconds log_interval_;
  bool draw_bar_;
  bool bar_visible_ = false;
  Clock::time_point start_;
  Clock::time_point last_log_;
  Clock::time_point last_draw_;
};

// "1.5 GiB", "312.0 KiB", "17 B"
std::string human_bytes(double bytes);

} // namespace kb::kasm

#include "kasm_bootstrap/kasm/download_progress.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <fmt/format.h>

#include <cstdio>

namespace kb::kasm {

std::string human_bytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, kUnits[unit]);
}

DownloadProgress::DownloadProgress(std::string what, std::chrono::milliseconds log_interval, bool draw_bar)
    : what_(std::move(what)), log_interval_(log_interval), draw_bar_(draw_bar), start_(Clock::now()), last_log_(start_),
      last_draw_(start_) {}

DownloadProgress::~DownloadProgress() { clear_bar(); }

void DownloadProgress::clear_bar() {
  if (!bar_visible_) return;
  // The bar is decoration: a console that cannot be written never fails a download.
  static_cast<void>(std::fputs("\r\033[K", stderr));
  static_cast<void>(std::fflush(stderr));
  bar_visible_ = false;
}

void DownloadProgress::update(std::uint64_t done, std::uint64_t total, std::uint64_t fetched) {
  const auto now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(fetched) / elapsed : 0;
  const bool known = total > 0 && total >= done;
  const double eta = known && rate > 0 ? static_cast<double>(total - done) / rate : -1;

  if (now - last_log_ >= log_interval_) {
    last_log_ = now;
    clear_bar();
    std::string line = fmt::format("{}: {}", what_, human_bytes(static_cast<double>(done)));
    if (known)
      line += fmt::format(" of {} ({:.0f}%)", human_bytes(static_cast<double>(total)),
                          100.0 * static_cast<double>(done) / static_cast<double>(total));
    line += fmt::format(", {}/s", human_bytes(rate));
    if (eta >= 0) line += fmt::format(", ETA {:.0f} s", eta);
    log::info("{}", line);
  }
  if (draw_bar_ && now - last_draw_ >= std::chrono::milliseconds(200)) {
    last_draw_ = now;
    constexpr int kWidth = 30;
    const int filled = known ? static_cast<int>(kWidth * static_cast<double>(done) / static_cast<double>(total)) : 0;
    std::string bar(static_cast<std::size_t>(filled), '=');
    bar.resize(kWidth, ' ');
    const std::string line =
        fmt::format("\r[{}] {} {}/s{}\033[K", bar, human_bytes(static_cast<double>(done)), human_bytes(rate),
                    eta >= 0 ? fmt::format(" ETA {:.0f} s", eta) : std::string());
    static_cast<void>(std::fputs(line.c_str(), stderr));
    static_cast<void>(std::fflush(stderr));
    bar_visible_ = true;
  }
}

void DownloadProgress::finish() { clear_bar(); }

} // namespace kb::kasm

#pragma once
// Logging: the one way the code base writes a log line, and its setup. Every line goes
// through a redacting sink (util/redactor.hpp), so a secret that reaches a log call is
// masked on every channel: stderr and the log file.
//
// spdlog is an implementation detail of log.cpp: header-only spdlog costs about 6 s of
// compile time in every translation unit that includes it, so callers see only fmt's
// format-string check here and one non-template write().

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace kb::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Writes one formatted line at `level` to the configured sinks (after redaction).
void write(Level level, std::string_view line);

template <typename... Args> void debug(fmt::format_string<Args...> format, Args&&... args) {
  write(Level::kDebug, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args> void info(fmt::format_string<Args...> format, Args&&... args) {
  write(Level::kInfo, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args> void warn(fmt::format_string<Args...> format, Args&&... args) {
  write(Level::kWarn, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args> void error(fmt::format_string<Args...> format, Args&&... args) {
  write(Level::kError, fmt::format(format, std::forward<Args>(args)...));
}

enum class Verbosity { kQuiet, kNormal, kVerbose };

// --color: kAuto colours stderr when it is a terminal and NO_COLOR is unset or empty
// (docs/platform.md); kAlways and kNever override both.
enum class ColorMode { kAuto, kAlways, kNever };

// Human-readable lines on stderr. Safe to call more than once (tests, subcommands).
// When stderr is the journal (JOURNAL_STREAM), lines carry a "<N>" priority prefix and
// never colour, whatever `color` says.
void init(Verbosity verbosity, ColorMode color = ColorMode::kAuto);

// Also append every line (debug and up) to `file`, a real host path already resolved
// under the root dir. Parent directories are created with mode 0750.
void add_file(const std::filesystem::path& file);

// Drop the file sink again (tests).
void reset();

// Collects every line logged (debug and up, after redaction) while it lives (tests).
class Capture {
public:
  Capture();
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
  // The captured lines, each ending in a newline.
  [[nodiscard]] std::string text() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace kb::log

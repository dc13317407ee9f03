#include "kasm_bootstrap/util/log.hpp"

#include "kasm_bootstrap/util/redactor.hpp"

#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <algorithm>

#include <memory>
#include <mutex>

namespace kb::log {
namespace {

// Masks registered secrets in the formatted payload before any real sink sees it.
class RedactingSink final : public spdlog::sinks::sink {
public:
  void log(const spdlog::details::log_msg& msg) override {
    const std::string clean = scrub(std::string_view(msg.payload.data(), msg.payload.size()));
    spdlog::details::log_msg copy = msg;
    copy.payload = spdlog::string_view_t(clean.data(), clean.size());
    std::lock_guard lock(mutex_);
    for (auto& s : sinks_)
      if (s->should_log(copy.level)) s->log(copy);
  }
  void flush() override {
    std::lock_guard lock(mutex_);
    for (auto& s : sinks_)
      s->flush();
  }
  void set_pattern(const std::string& pattern) override {
    std::lock_guard lock(mutex_);
    for (auto& s : sinks_)
      s->set_pattern(pattern);
  }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    std::lock_guard lock(mutex_);
    for (auto& s : sinks_)
      s->set_formatter(formatter->clone());
  }
  void add(spdlog::sink_ptr s) {
    std::lock_guard lock(mutex_);
    sinks_.push_back(std::move(s));
  }
  void keep_first(std::size_t n) {
    std::lock_guard lock(mutex_);
    if (sinks_.size() > n) sinks_.resize(n);
  }

private:
  std::mutex mutex_;
  std::vector<spdlog::sink_ptr> sinks_;
};

// stderr when systemd connected it to the journal (JOURNAL_STREAM names its device and
// inode; docs/platform.md): each line starts with its syslog priority "<N>",
// which journald strips and stores, and carries no timestamp of its own (the journal
// has one). Without it every line would be stored at the unit's default, info.
class JournalStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    int priority = 6;
    switch (msg.level) {
    case spdlog::level::trace:
    case spdlog::level::debug: priority = 7; break;
    case spdlog::level::info: priority = 6; break;
    case spdlog::level::warn: priority = 4; break;
    case spdlog::level::err: priority = 3; break;
    case spdlog::level::critical: priority = 2; break;
    default: break;
    }
    std::string line = "<" + std::to_string(priority) + ">";
    line.append(msg.payload.data(), msg.payload.size());
    line += '\n';
    std::string_view rest(line);
    while (!rest.empty()) {
      const ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  void flush_() override {}
};

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM"); // NOLINT(concurrency-mt-unsafe): read once at start
  if (!stream) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  return ::fstat(STDERR_FILENO, &st) == 0 && static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

std::shared_ptr<RedactingSink>& root_sink() {
  static std::shared_ptr<RedactingSink> sink;
  return sink;
}

} // namespace

void init(Verbosity verbosity, ColorMode color) {
  auto sink = std::make_shared<RedactingSink>();
  spdlog::sink_ptr console;
  if (stderr_is_journal()) {
    console = std::make_shared<JournalStderrSink>();
  } else {
    // NO_COLOR: any non-empty value turns colour off (docs/platform.md); --color wins.
    const char* no_color = std::getenv("NO_COLOR"); // NOLINT(concurrency-mt-unsafe): read once at start
    auto mode = no_color && *no_color ? spdlog::color_mode::never : spdlog::color_mode::automatic;
    if (color == ColorMode::kAlways) mode = spdlog::color_mode::always;
    if (color == ColorMode::kNever) mode = spdlog::color_mode::never;
    console = std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>(mode);
    console->set_pattern("%^%L%$ %H:%M:%S.%e %v");
  }
  switch (verbosity) {
  case Verbosity::kQuiet: console->set_level(spdlog::level::warn); break;
  case Verbosity::kNormal: console->set_level(spdlog::level::info); break;
  case Verbosity::kVerbose: console->set_level(spdlog::level::debug); break;
  }
  sink->add(console);
  root_sink() = sink;
  auto logger = std::make_shared<spdlog::logger>("kasm-bootstrap", sink);
  logger->set_level(spdlog::level::debug);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void add_file(const std::filesystem::path& file) {
  if (!root_sink()) init(Verbosity::kNormal);
  std::filesystem::create_directories(file.parent_path());
  auto fs = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string(), /*truncate=*/false);
  fs->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l [%t] %v");
  fs->set_level(spdlog::level::debug);
  root_sink()->add(fs);
}

void reset() {
  if (root_sink()) root_sink()->keep_first(1);
}

void write(Level level, std::string_view line) {
  spdlog::level::level_enum to = spdlog::level::info;
  switch (level) {
  case Level::kDebug: to = spdlog::level::debug; break;
  case Level::kInfo: to = spdlog::level::info; break;
  case Level::kWarn: to = spdlog::level::warn; break;
  case Level::kError: to = spdlog::level::err; break;
  }
  spdlog::default_logger_raw()->log(to, spdlog::string_view_t(line.data(), line.size()));
}

struct Capture::Impl {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(2000);
  spdlog::level::level_enum level = spdlog::get_level();
};

Capture::Capture() : impl_(std::make_unique<Impl>()) {
  spdlog::default_logger()->sinks().push_back(impl_->sink);
  spdlog::set_level(spdlog::level::debug);
}

Capture::~Capture() {
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), impl_->sink), sinks.end());
  spdlog::set_level(impl_->level);
}

std::string Capture::text() const {
  std::string all;
  for (const auto& line : impl_->sink->last_formatted())
    all += line;
  return all;
}

} // namespace kb::log

#pragma once
// Logging setup. All loggers write through a redacting sink (util/redactor.hpp), so a
// secret that reaches a log call is masked on every channel: stderr and the log file.

#include <filesystem>
#include <string_view>

namespace kb::log {

enum class Verbosity { kQuiet, kNormal, kVerbose };

// Human-readable lines on stderr. Safe to call more than once (tests, subcommands).
void init(Verbosity verbosity);

// Also append every line (debug and up) to `file`, a real host path already resolved
// under the root dir. Parent directories are created with mode 0750.
void add_file(const std::filesystem::path& file);

// Drop the file sink again (tests).
void reset();

} // namespace kb::log

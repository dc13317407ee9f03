#include "kasm_bootstrap/util/utc_time.hpp"

#include <fmt/chrono.h>

#include <ctime>

namespace kb::util {

std::string utc_timestamp_from_epoch(std::int64_t seconds_since_epoch) {
  // fmt::gmtime uses gmtime_r, so concurrent steps can call this.
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(static_cast<std::time_t>(seconds_since_epoch)));
}

std::string utc_timestamp(std::chrono::system_clock::time_point when) {
  return utc_timestamp_from_epoch(static_cast<std::int64_t>(std::chrono::system_clock::to_time_t(when)));
}

} // namespace kb::util

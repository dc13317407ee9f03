#pragma once
// The one timestamp format kasm-bootstrap writes (status.json, bake.json, certificate
// dates in messages): ISO 8601 in UTC to the second, "2026-11-29T02:15:00Z".

#include <chrono>
#include <cstdint>
#include <string>

namespace kb::util {

std::string utc_timestamp(std::chrono::system_clock::time_point when = std::chrono::system_clock::now());
std::string utc_timestamp_from_epoch(std::int64_t seconds_since_epoch);

} // namespace kb::util

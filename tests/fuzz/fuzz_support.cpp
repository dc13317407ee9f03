#include "fuzz_support.hpp"

#include <spdlog/spdlog.h>

namespace kb::fuzz {

void quiet_logging() { spdlog::set_level(spdlog::level::off); }

} // namespace kb::fuzz

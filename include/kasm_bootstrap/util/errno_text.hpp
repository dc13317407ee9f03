#pragma once
// The text for an errno value. std::strerror may share one buffer between threads, and
// steps run concurrently, so every message built from errno goes through here.

#include <string>

namespace kb::util {

std::string errno_text(int err);

} // namespace kb::util

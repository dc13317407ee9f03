#include "kasm_bootstrap/util/errno_text.hpp"

#include <array>
#include <cstring>

namespace kb::util {

std::string errno_text(int err) {
  std::array<char, 256> buffer{};
  // GNU strerror_r: returns either a static string or one written into buffer.
  return ::strerror_r(err, buffer.data(), buffer.size());
}

} // namespace kb::util

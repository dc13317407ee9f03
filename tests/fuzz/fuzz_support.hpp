#pragma once
// Shared by the libFuzzer targets: an invariant check that stops the run with a message
// (libFuzzer then saves the input as a crash), and quiet logging, since a target that
// logs every iteration spends its time formatting instead of exploring.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace kb::fuzz {

[[noreturn]] inline void invariant_failed(const char* what, const char* file, int line, std::string_view detail) {
  std::fprintf(stderr, "\n*** invariant violated at %s:%d: %s\n", file, line, what);
  if (!detail.empty()) std::fprintf(stderr, "    detail: %.*s\n", static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// In fuzz_support.cpp, so only one translation unit pays for spdlog's headers.
void quiet_logging();

inline bool printable_ascii(std::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7F) return false;
  }
  return true;
}

inline std::string_view as_text(const unsigned char* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

} // namespace kb::fuzz

#define FUZZ_CHECK(cond, detail)                                                                                       \
  do {                                                                                                                 \
    if (!(cond)) ::kb::fuzz::invariant_failed(#cond, __FILE__, __LINE__, (detail));                                    \
  } while (false)

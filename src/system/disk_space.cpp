#include "kasm_bootstrap/system/disk_space.hpp"

#include <sys/statvfs.h>

namespace kb::sys {

std::optional<std::uint64_t> free_bytes(const std::filesystem::path& host_dir) {
  struct statvfs st {};
  if (::statvfs(host_dir.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

} // namespace kb::sys

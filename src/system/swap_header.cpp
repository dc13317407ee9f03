#include "kasm_bootstrap/system/swap_header.hpp"

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace kb::sys::swap {
namespace {

void put_u32(std::string& page, std::size_t offset, std::uint32_t value) {
  std::memcpy(page.data() + offset, &value, sizeof value);
}

std::uint32_t get_u32(std::string_view page, std::size_t offset) {
  std::uint32_t value = 0;
  std::memcpy(&value, page.data() + offset, sizeof value);
  return value;
}

} // namespace

std::size_t page_size() {
  const long n = ::sysconf(_SC_PAGESIZE);
  return n > 0 ? static_cast<std::size_t>(n) : 4096;
}

Uuid random_uuid() {
  Uuid u{};
  std::size_t got = 0;
  while (got < u.size()) {
    const ssize_t n = ::getrandom(u.data() + got, u.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom for a swap UUID");
    }
    got += static_cast<std::size_t>(n);
  }
  u[6] = static_cast<unsigned char>((u[6] & 0x0f) | 0x40); // version 4
  u[8] = static_cast<unsigned char>((u[8] & 0x3f) | 0x80); // RFC 4122 variant
  return u;
}

std::string to_string(const Uuid& uuid) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < uuid.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[uuid[i] >> 4]);
    s.push_back(kHex[uuid[i] & 0x0f]);
  }
  return s;
}

std::string build_header(std::uint64_t size_bytes, std::size_t page, const Uuid& uuid, std::string_view label) {
  if (page < kLabelOffset + kLabelMax + kSwapMagic.size())
    throw std::invalid_argument("page size " + std::to_string(page) + " is too small for a swap header");
  const std::uint64_t pages = size_bytes / page;
  if (pages < kMinPages)
    throw std::invalid_argument("a swap area needs at least " + std::to_string(kMinPages) + " pages (" +
                                std::to_string(kMinPages * page) + " bytes), got " + std::to_string(size_bytes) +
                                " bytes");
  if (pages - 1 > UINT32_MAX)
    throw std::invalid_argument("a swap area of " + std::to_string(size_bytes) + " bytes has too many pages");
  if (label.size() > kLabelMax)
    throw std::invalid_argument("swap label '" + std::string(label) + "' is longer than 16 bytes");

  std::string header(page, '\0');
  put_u32(header, kVersionOffset, 1);
  put_u32(header, kLastPageOffset, static_cast<std::uint32_t>(pages - 1));
  put_u32(header, kBadPagesOffset, 0);
  std::memcpy(header.data() + kUuidOffset, uuid.data(), uuid.size());
  std::memcpy(header.data() + kLabelOffset, label.data(), label.size());
  std::memcpy(header.data() + page - kSwapMagic.size(), kSwapMagic.data(), kSwapMagic.size());
  return header;
}

std::optional<HeaderInfo> parse_header(std::string_view page, std::size_t page_size_bytes) {
  if (page_size_bytes < kLabelOffset + kLabelMax + kSwapMagic.size() || page.size() < page_size_bytes)
    return std::nullopt;
  if (page.substr(page_size_bytes - kSwapMagic.size(), kSwapMagic.size()) != kSwapMagic) return std::nullopt;
  HeaderInfo info;
  info.version = get_u32(page, kVersionOffset);
  if (info.version != 1) return std::nullopt;
  info.last_page = get_u32(page, kLastPageOffset);
  std::memcpy(info.uuid.data(), page.data() + kUuidOffset, info.uuid.size());
  const auto label = page.substr(kLabelOffset, kLabelMax);
  info.label = std::string(label.substr(0, label.find('\0')));
  return info;
}

} // namespace kb::sys::swap

#pragma once
// The Linux swap area header (version 1, as mkswap writes it), built and parsed natively
// so the binary needs no mkswap. Layout of the first page (include/linux/swap.h,
// union swap_header): 1024 boot bytes, then u32 version, u32 last_page, u32 nr_badpages,
// 16 bytes UUID, 16 bytes volume label; "SWAPSPACE2" ends the page. Integers are in the
// host's byte order, which is what the kernel expects.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kb::sys::swap {

using Uuid = std::array<unsigned char, 16>;

inline constexpr std::string_view kSwapMagic = "SWAPSPACE2";
inline constexpr std::size_t kVersionOffset = 1024;
inline constexpr std::size_t kLastPageOffset = 1028;
inline constexpr std::size_t kBadPagesOffset = 1032;
inline constexpr std::size_t kUuidOffset = 1036;
inline constexpr std::size_t kLabelOffset = 1052;
inline constexpr std::size_t kLabelMax = 16;
// mkswap refuses fewer than 10 pages; so do we.
inline constexpr std::uint64_t kMinPages = 10;

std::size_t page_size();

// A random (version 4) UUID from getrandom(2).
Uuid random_uuid();
std::string to_string(const Uuid& uuid); // 8-4-4-4-12 lowercase hex

// One page: the header for a swap area of `size_bytes` (whole pages are used; the
// remainder is ignored). Throws std::invalid_argument when the area is too small, has
// more pages than a u32 can count, or the label is longer than 16 bytes.
std::string build_header(std::uint64_t size_bytes, std::size_t page_size, const Uuid& uuid, std::string_view label);

struct HeaderInfo {
  std::uint32_t version = 0;
  std::uint32_t last_page = 0;
  Uuid uuid{};
  std::string label;
  // Size of the area the header describes.
  std::uint64_t size_bytes(std::size_t page_size) const { return (std::uint64_t{last_page} + 1) * page_size; }
};

// nullopt when `page` (the first page_size bytes of a file) is not a version 1 swap area.
std::optional<HeaderInfo> parse_header(std::string_view page, std::size_t page_size);

} // namespace kb::sys::swap

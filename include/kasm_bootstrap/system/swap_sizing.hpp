#pragma once
// How big the swap file should be (docs/platform.md "Swap"): cloud-init's rule, so a Kasm
// agent gets the same swap as any other cloud-init host of its size. Pure functions over
// numbers and over the text of /proc files, so every boundary is testable.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kb::sys::swap {

inline constexpr std::uint64_t kMiB = 1ull << 20;
inline constexpr std::uint64_t kGiB = 1ull << 30;
// An automatic size below this is not worth a swap file: the host is out of disk.
inline constexpr std::uint64_t kMinAutoBytes = 16 * kMiB;

struct Sizing {
  std::uint64_t bytes = 0; // rounded down to whole pages
  std::string rule;        // which branch of the rule decided, for the dry run
};

// cloud-init's suggested_swapsize: RAM < 4 GiB -> RAM; < 16 GiB -> 4 GiB; else
// round(sqrt(RAM in GiB)) GiB (Python's round: halves go to the even neighbour),
// capped at min(2 x RAM, 25 % of free disk).
Sizing auto_size(std::uint64_t ram_bytes, std::uint64_t free_disk_bytes, std::uint64_t page_size);

// MemTotal from the text of /proc/meminfo, in bytes; nullopt when absent or malformed.
std::optional<std::uint64_t> parse_meminfo_total(std::string_view meminfo);

struct ActiveSwap {
  std::string path; // octal escapes (\040) decoded
  std::string type; // file | partition
  std::uint64_t size_bytes = 0;
};
// Entries of /proc/swaps (the header line is skipped).
std::vector<ActiveSwap> parse_proc_swaps(std::string_view text);

// "3.8 GiB", "42 GiB", "512 MiB", "4 KiB", "100 B": one decimal at most, ".0" dropped.
std::string human_size(std::uint64_t bytes);

} // namespace kb::sys::swap

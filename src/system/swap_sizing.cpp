#include "kasm_bootstrap/system/swap_sizing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cfenv>
#include <charconv>
#include <cmath>

namespace kb::sys::swap {
namespace {

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
      ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
      ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The kernel writes \040-style escapes for whitespace and backslashes in /proc/swaps.
std::string decode_octal(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && s.size() - i >= 4 &&
        std::all_of(s.begin() + static_cast<std::ptrdiff_t>(i) + 1, s.begin() + static_cast<std::ptrdiff_t>(i) + 4,
                    [](char c) { return c >= '0' && c <= '7'; })) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

} // namespace

Sizing auto_size(std::uint64_t ram, std::uint64_t free_disk, std::uint64_t page_size) {
  Sizing s;
  std::uint64_t base = 0;
  if (ram < 4 * kGiB) {
    base = ram;
    s.rule = "RAM < 4 GiB: swap = RAM";
  } else if (ram < 16 * kGiB) {
    base = 4 * kGiB;
    s.rule = "4 GiB <= RAM < 16 GiB: swap = 4 GiB";
  } else {
    // nearbyint honours the default round-to-nearest-even mode, which is what
    // cloud-init's Python round() does with a .5 (sqrt of 20.25 GiB -> 4, not 5).
    const double root = std::sqrt(static_cast<double>(ram) / static_cast<double>(kGiB));
    base = static_cast<std::uint64_t>(std::nearbyint(root)) * kGiB;
    s.rule = fmt::format("RAM >= 16 GiB: swap = round(sqrt({:.1f})) GiB = {} GiB",
                         static_cast<double>(ram) / static_cast<double>(kGiB), base / kGiB);
  }
  const std::uint64_t twice_ram = ram > UINT64_MAX / 2 ? UINT64_MAX : 2 * ram;
  const std::uint64_t quarter_disk = free_disk / 4;
  std::uint64_t size = base;
  if (quarter_disk < size && quarter_disk <= twice_ram) {
    size = quarter_disk;
    s.rule += fmt::format(", capped at 25% of free disk ({})", human_size(quarter_disk));
  } else if (twice_ram < size) {
    size = twice_ram;
    s.rule += ", capped at 2 x RAM";
  }
  if (page_size > 0) size -= size % page_size;
  s.bytes = size;
  return s;
}

std::optional<std::uint64_t> parse_meminfo_total(std::string_view meminfo) {
  std::size_t pos = 0;
  while (pos < meminfo.size()) {
    const std::size_t nl = meminfo.find('\n', pos);
    const auto line = meminfo.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? meminfo.size() : nl + 1;
    const auto f = fields(line);
    if (f.size() < 2 || f[0] != "MemTotal:") continue;
    const auto value = to_u64(f[1]);
    if (!value) return std::nullopt;
    if (f.size() >= 3 && f[2] != "kB") return std::nullopt;
    if (f.size() < 3) return *value; // no unit: bytes
    if (*value > UINT64_MAX / 1024) return std::nullopt;
    return *value * 1024;
  }
  return std::nullopt;
}

std::vector<ActiveSwap> parse_proc_swaps(std::string_view text) {
  std::vector<ActiveSwap> out;
  std::size_t pos = 0;
  bool first = true;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    const auto line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    const auto f = fields(line);
    if (f.empty()) continue;
    if (first && f[0] == "Filename") {
      first = false;
      continue;
    }
    first = false;
    ActiveSwap s;
    s.path = decode_octal(f[0]);
    if (f.size() > 1) s.type = std::string(f[1]);
    if (f.size() > 2)
      if (auto kib = to_u64(f[2])) s.size_bytes = *kib * 1024;
    out.push_back(std::move(s));
  }
  return out;
}

std::string human_size(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  std::string text = unit == 0 ? fmt::format("{}", bytes) : fmt::format("{:.1f}", value);
  if (text.size() > 2 && text.compare(text.size() - 2, 2, ".0") == 0) text.resize(text.size() - 2);
  return text + " " + kUnits[unit];
}

} // namespace kb::sys::swap

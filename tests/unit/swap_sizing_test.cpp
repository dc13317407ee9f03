// Swap sizing (cloud-init's rule) at its boundaries, the /proc parsers, and the native
// swap header, all as pure functions.

#include "kasm_bootstrap/system/swap_header.hpp"
#include "kasm_bootstrap/system/swap_sizing.hpp"
#include "test_support.hpp"

#include <cstring>
#include <set>
#include <stdexcept>

using namespace kb::sys::swap;

namespace {
constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kBigDisk = 1000 * kGiB;
} // namespace

TEST_CASE("auto swap size follows cloud-init's table at each boundary", "[swap][sizing]") {
  // RAM < 4 GiB: swap = RAM (a "4 GiB" instance reports ~3.8 GiB MemTotal).
  CHECK(auto_size(1 * kGiB, kBigDisk, kPage).bytes == 1 * kGiB);
  CHECK(auto_size(4 * kGiB - kPage, kBigDisk, kPage).bytes == 4 * kGiB - kPage);
  CHECK(auto_size(4 * kGiB - 1, kBigDisk, kPage).bytes == 4 * kGiB - kPage); // rounded down to whole pages
  CHECK(auto_size(4 * kGiB - kPage, kBigDisk, kPage).rule.find("RAM < 4 GiB") == 0);
  // 4 GiB <= RAM < 16 GiB: 4 GiB.
  CHECK(auto_size(4 * kGiB, kBigDisk, kPage).bytes == 4 * kGiB);
  CHECK(auto_size(4 * kGiB, kBigDisk, kPage).rule.find("4 GiB <= RAM < 16 GiB") == 0);
  CHECK(auto_size(16 * kGiB - kPage, kBigDisk, kPage).bytes == 4 * kGiB);
  CHECK(auto_size(16 * kGiB - kPage, kBigDisk, kPage).rule.find("4 GiB <= RAM < 16 GiB") == 0);
  // Inside the band, where the square-root rule would give 2 or 3 GiB (sqrt(6) = 2.4,
  // sqrt(12) = 3.46) and the RAM rule 5 to 13 GiB: a step moved anywhere between 4 and
  // 16 GiB changes one of these.
  for (const std::uint64_t gib : {5, 6, 8, 9, 10, 11, 12, 13}) {
    INFO(gib << " GiB of RAM");
    CHECK(auto_size(gib * kGiB, kBigDisk, kPage).bytes == 4 * kGiB);
    CHECK(auto_size(gib * kGiB, kBigDisk, kPage).rule.find("4 GiB <= RAM < 16 GiB") == 0);
  }
  // Below 4 GiB the swap follows the RAM, so a step moved down shows here.
  CHECK(auto_size(3 * kGiB, kBigDisk, kPage).bytes == 3 * kGiB);
  CHECK(auto_size(2 * kGiB, kBigDisk, kPage).rule.find("RAM < 4 GiB") == 0);
  // RAM >= 16 GiB: round(sqrt(RAM GiB)) GiB.
  CHECK(auto_size(16 * kGiB, kBigDisk, kPage).bytes == 4 * kGiB);
  CHECK(auto_size(16 * kGiB, kBigDisk, kPage).rule.find("RAM >= 16 GiB") == 0);
  CHECK(auto_size(17 * kGiB, kBigDisk, kPage).rule.find("RAM >= 16 GiB") == 0);
  CHECK(auto_size(25 * kGiB, kBigDisk, kPage).bytes == 5 * kGiB);
  CHECK(auto_size(64 * kGiB, kBigDisk, kPage).bytes == 8 * kGiB);
  CHECK(auto_size(1024 * kGiB, 100000 * kGiB, kPage).bytes == 32 * kGiB);
  // Python's round() sends .5 to the even neighbour: sqrt(20.25) = 4.5 -> 4, sqrt(30.25) = 5.5 -> 6.
  CHECK(auto_size(20 * kGiB + kGiB / 4, kBigDisk, kPage).bytes == 4 * kGiB);
  CHECK(auto_size(30 * kGiB + kGiB / 4, kBigDisk, kPage).bytes == 6 * kGiB);
  CHECK(auto_size(30 * kGiB, kBigDisk, kPage).bytes == 5 * kGiB); // sqrt(30) = 5.48
}

TEST_CASE("auto swap size is capped at 25% of free disk", "[swap][sizing]") {
  // Exactly 4x the size: the cap does not bite.
  CHECK(auto_size(8 * kGiB, 16 * kGiB, kPage).bytes == 4 * kGiB);
  CHECK(auto_size(8 * kGiB, 16 * kGiB, kPage).rule.find("capped") == std::string::npos);
  // Just under it: a quarter of the disk, rounded down to a page.
  CHECK(auto_size(8 * kGiB, 16 * kGiB - 4, kPage).bytes == 4 * kGiB - kPage);
  CHECK(auto_size(8 * kGiB, 10 * kGiB, kPage).bytes == 10 * kGiB / 4);
  CHECK(auto_size(8 * kGiB, 10 * kGiB, kPage).rule.find("capped at 25% of free disk (2.5 GiB)") != std::string::npos);
  CHECK(auto_size(2 * kGiB, 0, kPage).bytes == 0);
  CHECK(auto_size(0, kBigDisk, kPage).bytes == 0);
}

TEST_CASE("MemTotal is read from /proc/meminfo text", "[swap][sizing]") {
  const std::string meminfo = "MemTotal:        3986712 kB\nMemFree:          123456 kB\nMemAvailable:    3000000 kB\n";
  CHECK(parse_meminfo_total(meminfo) == std::uint64_t{3986712} * 1024);
  CHECK(parse_meminfo_total("MemFree: 1 kB\nMemTotal:\t16384 kB") == std::uint64_t{16384} * 1024);
  CHECK_FALSE(parse_meminfo_total("MemFree: 1 kB\n").has_value());
  CHECK_FALSE(parse_meminfo_total("MemTotal: lots kB\n").has_value());
  CHECK_FALSE(parse_meminfo_total("MemTotal: 12 MB\n").has_value());
  CHECK_FALSE(parse_meminfo_total("").has_value());
}

TEST_CASE("/proc/swaps entries are parsed with escaped names", "[swap][sizing]") {
  CHECK(parse_proc_swaps("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n").empty());
  CHECK(parse_proc_swaps("").empty());
  const auto swaps = parse_proc_swaps("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
                                      "/dev/nvme0n1p3                          partition\t8388604\t\t0\t\t-2\n"
                                      "/var/my\\040swap                         file\t\t65532\t\t0\t\t-3\n");
  REQUIRE(swaps.size() == 2);
  CHECK(swaps[0].path == "/dev/nvme0n1p3");
  CHECK(swaps[0].type == "partition");
  CHECK(swaps[0].size_bytes == std::uint64_t{8388604} * 1024);
  CHECK(swaps[1].path == "/var/my swap");
  CHECK(swaps[1].type == "file");
}

TEST_CASE("sizes are shown the way an operator reads them", "[swap][sizing]") {
  CHECK(human_size(0) == "0 B");
  CHECK(human_size(100) == "100 B");
  CHECK(human_size(4096) == "4 KiB");
  CHECK(human_size(512 * kMiB) == "512 MiB");
  CHECK(human_size(42 * kGiB) == "42 GiB");
  CHECK(human_size(std::uint64_t{3986712} * 1024) == "3.8 GiB");
  CHECK(human_size(kGiB + kGiB / 2) == "1.5 GiB");
}

TEST_CASE("the swap header has mkswap's layout", "[swap][header]") {
  const Uuid uuid = random_uuid();
  CHECK((uuid[6] >> 4) == 4);
  CHECK((uuid[8] & 0xc0) == 0x80);
  CHECK(random_uuid() != uuid);
  const std::string text = to_string(uuid);
  CHECK(text.size() == 36);
  CHECK(text[8] == '-');
  CHECK(text[23] == '-');

  const std::string header = build_header(64 * kMiB + 123, kPage, uuid, "kasm-swap");
  REQUIRE(header.size() == kPage);
  CHECK(header.substr(kPage - 10) == "SWAPSPACE2");
  std::uint32_t version = 0, last_page = 0, bad = 7;
  std::memcpy(&version, header.data() + 1024, 4);
  std::memcpy(&last_page, header.data() + 1028, 4);
  std::memcpy(&bad, header.data() + 1032, 4);
  CHECK(version == 1);
  CHECK(last_page == 64 * kMiB / kPage - 1);
  CHECK(bad == 0);
  CHECK(std::memcmp(header.data() + 1036, uuid.data(), 16) == 0);
  CHECK(header.compare(1052, 9, "kasm-swap") == 0);
  CHECK(header.find_first_not_of('\0') == 1024); // boot block zeroed

  const auto info = parse_header(header, kPage);
  REQUIRE(info);
  CHECK(info->version == 1);
  CHECK(info->uuid == uuid);
  CHECK(info->label == "kasm-swap");
  CHECK(info->size_bytes(kPage) == 64 * kMiB);

  std::string corrupt = header;
  corrupt[kPage - 1] = 'X';
  CHECK_FALSE(parse_header(corrupt, kPage));
  CHECK_FALSE(parse_header(header.substr(0, 100), kPage));
  CHECK_FALSE(parse_header(std::string(kPage, '\0'), kPage));
}

TEST_CASE("swap headers refuse impossible areas", "[swap][header]") {
  const Uuid uuid = random_uuid();
  CHECK_NOTHROW(build_header(10 * kPage, kPage, uuid, ""));
  CHECK_THROWS_AS(build_header(10 * kPage - 1, kPage, uuid, ""), std::invalid_argument);
  CHECK_THROWS_AS(build_header(0, kPage, uuid, ""), std::invalid_argument);
  CHECK_THROWS_AS(build_header(64 * kMiB, kPage, uuid, "seventeen-bytes!!"), std::invalid_argument);
  CHECK_THROWS_AS(build_header((std::uint64_t{1} << 32) * kPage + kPage, kPage, uuid, ""), std::invalid_argument);
}

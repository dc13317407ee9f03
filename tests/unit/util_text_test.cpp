// The shared text helpers: errno messages and the one timestamp format.
#include "kasm_bootstrap/util/errno_text.hpp"
#include "kasm_bootstrap/util/utc_time.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <thread>
#include <vector>

using namespace kb;

TEST_CASE("errno text is the C library's message, also for unknown values and from many threads", "[util]") {
  CHECK(util::errno_text(ENOENT) == "No such file or directory");
  CHECK(util::errno_text(ENOSPC) == "No space left on device");
  CHECK(util::errno_text(99999) == "Unknown error 99999");

  std::vector<std::thread> threads;
  std::vector<std::string> seen(8);
  for (std::size_t i = 0; i < seen.size(); ++i)
    threads.emplace_back([&seen, i] {
      const int err = i % 2 ? 99000 + static_cast<int>(i) : EACCES;
      for (int n = 0; n < 2000; ++n)
        seen[i] = util::errno_text(err);
    });
  for (auto& t : threads)
    t.join();
  for (std::size_t i = 0; i < seen.size(); ++i)
    CHECK(seen[i] == (i % 2 ? "Unknown error " + std::to_string(99000 + i) : std::string("Permission denied")));
}

TEST_CASE("timestamps are ISO 8601 UTC to the second", "[util]") {
  CHECK(util::utc_timestamp_from_epoch(0) == "1970-01-01T00:00:00Z");
  CHECK(util::utc_timestamp_from_epoch(1795919696) == "2026-11-29T02:34:56Z");
  const auto when = std::chrono::system_clock::from_time_t(1795919696) + std::chrono::milliseconds(999);
  CHECK(util::utc_timestamp(when) == "2026-11-29T02:34:56Z");
}

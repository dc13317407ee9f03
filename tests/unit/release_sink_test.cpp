// The single-stream download's writer thread (src/kasm/hashing_file_sink.cpp): every byte
// hashed in order and written in order, whatever the chunk sizes; a failed write reported
// to the receiver with its errno and nothing written after it.

#include "test_support.hpp"

#include "kasm_bootstrap/kasm/hashing_file_sink.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/sha256.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <memory>
#include <random>
#include <system_error>

using namespace kb;
using namespace kb::test;

namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(rng() & 0xff);
  return s;
}

sys::UniqueFd open_for_writing(const std::filesystem::path& p) {
  sys::UniqueFd fd(::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  REQUIRE(fd);
  return fd;
}

} // namespace

TEST_CASE("sink: chunks of every size land hashed and written in order", "[release][sink]") {
  TempDir dir;
  const auto path = dir.path() / "out";
  auto fd = open_for_writing(path);
  // 4.5 blocks and a bit: full blocks, a block boundary inside a chunk, a chunk larger than
  // two blocks, a tail shorter than one.
  const std::string data = random_bytes(kasm::HashingFileSink::kBlock * 9 / 2 + 12345, 7);
  util::Sha256 hasher;
  {
    kasm::HashingFileSink sink(fd.get(), hasher);
    std::size_t at = 0;
    const std::size_t sizes[] = {1, 16384, 3 * kasm::HashingFileSink::kBlock - 1, 7, 100000};
    for (std::size_t i = 0; at < data.size(); ++i) {
      const std::size_t n = std::min(sizes[i % std::size(sizes)], data.size() - at);
      sink.append(std::string_view(data).substr(at, n));
      at += n;
    }
    sink.flush();
  }
  CHECK(hasher.hex_digest() == util::sha256_hex(data));
  CHECK(read_file(path) == data);
}

TEST_CASE("sink: flush makes what came so far durable-ready, and the sink goes on after it", "[release][sink]") {
  TempDir dir;
  const auto path = dir.path() / "out";
  auto fd = open_for_writing(path);
  util::Sha256 hasher;
  kasm::HashingFileSink sink(fd.get(), hasher);
  sink.append("first part, ");
  sink.flush(); // as after a transfer that broke off: the next one resumes after this
  CHECK(read_file(path) == "first part, ");
  sink.append("second part");
  sink.flush();
  CHECK(read_file(path) == "first part, second part");
  CHECK(hasher.hex_digest() == util::sha256_hex("first part, second part"));
}

TEST_CASE("sink: restart hashes into the new hasher only what comes after it", "[release][sink]") {
  TempDir dir;
  const auto path = dir.path() / "out";
  auto fd = open_for_writing(path);
  auto first = std::make_unique<util::Sha256>();
  util::Sha256 second;
  kasm::HashingFileSink sink(fd.get(), *first);
  // Blocks still queued or in the worker's hands when the download starts over (no flush):
  // restart waits for the one being written and drops the rest.
  const std::string stale(kasm::HashingFileSink::kBlock, 's');
  for (int i = 0; i < 6; ++i)
    sink.append(stale);
  sink.restart(second);
  first.reset(); // the old hasher may go now: ASan would see the worker still using it
  REQUIRE(::ftruncate(fd.get(), 0) == 0);
  REQUIRE(::lseek(fd.get(), 0, SEEK_SET) == 0);
  sink.append("fresh");
  sink.flush();
  CHECK(second.hex_digest() == util::sha256_hex("fresh"));
  CHECK(read_file(path) == "fresh");
}

TEST_CASE("sink: a full disk is reported with its errno, to append or to flush", "[release][sink]") {
  sys::UniqueFd full(::open("/dev/full", O_WRONLY | O_CLOEXEC));
  REQUIRE(full); // every Linux has /dev/full: each write fails with ENOSPC
  util::Sha256 hasher;
  kasm::HashingFileSink sink(full.get(), hasher);
  int seen = 0;
  try {
    // Enough blocks that the worker's failure reaches append() before the end, or flush().
    const std::string block(kasm::HashingFileSink::kBlock, 'x');
    for (int i = 0; i < 16; ++i)
      sink.append(block);
    sink.flush();
  } catch (const std::system_error& e) {
    seen = e.code().value();
  }
  CHECK(seen == ENOSPC);
  // Still failed, not silently reset: a later flush says so again.
  CHECK_THROWS_AS(sink.flush(), std::system_error);
}

TEST_CASE("sink: a write that fails stops everything queued behind it", "[release][sink]") {
  TempDir dir;
  const auto path = dir.path() / "out";
  { auto fd = open_for_writing(path); }
  // Read-only: every write fails with EBADF, so not one byte may reach the file.
  sys::UniqueFd ro(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(ro);
  util::Sha256 hasher;
  kasm::HashingFileSink sink(ro.get(), hasher);
  CHECK_THROWS_AS(
      [&] {
        const std::string block(kasm::HashingFileSink::kBlock, 'y');
        for (int i = 0; i < 8; ++i)
          sink.append(block);
        sink.flush();
      }(),
      std::system_error);
  CHECK(read_file(path).empty());
}

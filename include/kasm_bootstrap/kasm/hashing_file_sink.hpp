#pragma once
// The single-stream download's writer: gathers the receiver's small chunks into 512 KiB
// blocks and hands each to one worker thread that hashes it (SHA-256, in order) and
// writes it at the file's position, so hashing and disk writes overlap with receiving
// and decrypting instead of running on the receiving thread.

#include "kasm_bootstrap/util/sha256.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace kb::kasm {

class HashingFileSink {
public:
  // fd: written with write(2) from its current position. hasher: updated with every byte,
  // in order. Both must outlive the sink (or the next restart()).
  HashingFileSink(int fd, util::Sha256& hasher);
  ~HashingFileSink(); // stops the worker; what was not flushed is dropped
  HashingFileSink(const HashingFileSink&) = delete;
  HashingFileSink& operator=(const HashingFileSink&) = delete;

  // Takes a chunk. Throws std::system_error if an earlier block could not be written.
  void append(std::string_view data);
  // Returns once every byte appended so far is hashed and written; throws
  // std::system_error (the write's errno) if one could not be written.
  void flush();
  // A download starting over: drops what was not written yet, waits for the block being
  // written, then hashes into `hasher` from the next append() on. The old hasher is free
  // to go when this returns.
  void restart(util::Sha256& hasher);

  // Memory: at most kBlocksInFlight queued, one in the worker, one being filled (5 MiB).
  // The queue absorbs a write or writeback start that blocks for a few milliseconds
  // (8.6 ms at most in a 512 MiB download traced with `perf trace`): 4 MiB is 10 ms of a
  // 400 MB/s stream, so the receiver keeps draining the socket meanwhile.
  static constexpr std::size_t kBlock = std::size_t{512} << 10;
  static constexpr std::size_t kBlocksInFlight = 8;

private:
  void work();
  void hand_over(std::unique_lock<std::mutex>& lock);
  void throw_if_failed_locked() const;

  int fd_;
  util::Sha256* hasher_;
  std::string current_; // the block being filled by append()
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::string> queue_; // full blocks, oldest first
  std::vector<std::string> pool_; // emptied blocks, kept for reuse
  bool busy_ = false;             // the worker holds a block
  bool stopping_ = false;
  std::atomic<int> error_{0}; // errno of the first failed write; append() peeks without the lock
  std::uint64_t written_ = 0;
  std::uint64_t writeback_started_ = 0;
  std::jthread worker_; // last: started when everything above exists
};

} // namespace kb::kasm

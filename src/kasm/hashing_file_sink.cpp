#include "kasm_bootstrap/kasm/hashing_file_sink.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace kb::kasm {
namespace {

// Start the writeback of every 8 MiB as it is written (sync_file_range(2),
// docs/platform.md), so the fsync before the rename has little left to do.
constexpr std::uint64_t kWritebackEvery = std::uint64_t{8} << 20;

int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

} // namespace

HashingFileSink::HashingFileSink(int fd, util::Sha256& hasher)
    : fd_(fd), hasher_(&hasher), worker_([this] { work(); }) {
  current_.reserve(kBlock);
}

HashingFileSink::~HashingFileSink() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  changed_.notify_all();
  // worker_ joins here (std::jthread), after the current block if it has one.
}

void HashingFileSink::throw_if_failed_locked() const {
  if (const int e = error_.load(); e != 0) throw std::system_error(e, std::generic_category());
}

void HashingFileSink::hand_over(std::unique_lock<std::mutex>& lock) {
  changed_.wait(lock, [this] { return queue_.size() < kBlocksInFlight || error_ != 0; });
  throw_if_failed_locked();
  queue_.push_back(std::move(current_));
  if (pool_.empty()) {
    current_ = std::string();
    current_.reserve(kBlock);
  } else {
    current_ = std::move(pool_.back());
    pool_.pop_back();
  }
  changed_.notify_all();
}

void HashingFileSink::append(std::string_view data) {
  while (!data.empty()) {
    const std::size_t take = std::min(data.size(), kBlock - current_.size());
    current_.append(data.substr(0, take));
    data.remove_prefix(take);
    if (current_.size() == kBlock) {
      std::unique_lock lock(mutex_);
      hand_over(lock);
    }
  }
  if (error_.load(std::memory_order_relaxed) != 0) {
    std::lock_guard lock(mutex_);
    throw_if_failed_locked();
  }
}

void HashingFileSink::flush() {
  std::unique_lock lock(mutex_);
  if (!current_.empty() && error_ == 0) hand_over(lock);
  changed_.wait(lock, [this] { return (queue_.empty() && !busy_) || error_ != 0; });
  throw_if_failed_locked();
}

void HashingFileSink::restart(util::Sha256& hasher) {
  std::unique_lock lock(mutex_);
  current_.clear();
  queue_.clear();
  // The block in the worker's hands still goes into the old hasher and the file: wait for
  // it, so the caller may cut the file and drop the old hasher as soon as this returns.
  changed_.wait(lock, [this] { return !busy_; });
  hasher_ = &hasher;
  error_.store(0);
}

void HashingFileSink::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::string block = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    util::Sha256* hasher = hasher_;
    lock.unlock();

    hasher->update(block);
    const int error = write_all(fd_, block);
    written_ += block.size();
    if (error == 0 && written_ - writeback_started_ >= kWritebackEvery) {
      ::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE); // the whole file's dirty pages; does not wait
      writeback_started_ = written_;
    }
    block.clear();

    lock.lock();
    busy_ = false;
    if (error != 0 && error_.load() == 0) {
      error_.store(error);
      queue_.clear(); // nothing after a failed write may land: the file would have a hole
    }
    pool_.push_back(std::move(block));
    changed_.notify_all();
  }
}

} // namespace kb::kasm

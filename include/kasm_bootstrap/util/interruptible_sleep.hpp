#pragma once
// The one way a retry loop waits: in short slices, so a SIGTERM (the run's cancel flag)
// is honoured within 50 ms instead of after the whole pause.

#include <atomic>
#include <chrono>

namespace kb::util {

// Returns after `duration`, or as soon as *cancel becomes true (cancel may be null).
void interruptible_sleep(std::chrono::milliseconds duration, const std::atomic<bool>* cancel);

} // namespace kb::util

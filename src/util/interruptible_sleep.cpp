#include "kasm_bootstrap/util/interruptible_sleep.hpp"

#include <algorithm>
#include <thread>

namespace kb::util {

void interruptible_sleep(std::chrono::milliseconds duration, const std::atomic<bool>* cancel) {
  using Clock = std::chrono::steady_clock;
  using std::chrono::milliseconds;
  const auto until = Clock::now() + duration;
  while (Clock::now() < until) {
    if (cancel && cancel->load()) return;
    std::this_thread::sleep_for(
        std::min<milliseconds>(milliseconds(50), std::chrono::duration_cast<milliseconds>(until - Clock::now())));
  }
}

} // namespace kb::util

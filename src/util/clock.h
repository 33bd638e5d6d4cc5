// Seconds on the monotonic clock, for durations (step times, communication time).
#pragma once

#include <chrono>

namespace ttt {

inline double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace ttt

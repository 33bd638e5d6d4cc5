// What every fuzz target checks: the parser under test either succeeds or throws a
// std::runtime_error (ConfigError, ZarrError, ...) whose message is one line. Any other exception
// (a raw JSON or LibTorch error, std::out_of_range, std::bad_alloc) escapes and libFuzzer reports
// it as a crash, like a sanitizer finding, a hang or an allocation past -rss_limit_mb.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ttt::fuzz {

template <typename Fn>
bool runs_cleanly(Fn&& fn) {
  try {
    fn();
    return true;
  } catch (const std::runtime_error& e) {
    if (std::strchr(e.what(), '\n') != nullptr) {
      std::fprintf(stderr, "error message spans several lines:\n%s\n", e.what());
      std::abort();
    }
    return false;
  }
}

inline void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

inline std::string as_string(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace ttt::fuzz

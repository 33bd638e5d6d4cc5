#include "data/copy_spans.h"

#include <algorithm>
#include <random>
#include <stdexcept>
#include <string>

namespace ttt {

void apply_copy_spans(int64_t* tokens, int64_t n, const CopySpanOptions& options, uint64_t seed, int64_t draw) {
  if (options.count <= 0) return;
  const int64_t length = options.length;
  if (length < 1 || n < 2 * length)
    throw std::invalid_argument("copy spans of " + std::to_string(length) + " tokens need sequences of at least " +
                                std::to_string(2 * length) + " tokens, not " + std::to_string(n));
  // A generator of its own per sequence (not the shuffle's): the draw index fixes the text.
  std::seed_seq key{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(draw),
                    static_cast<uint32_t>(static_cast<uint64_t>(draw) >> 32), 0x636f7079u};
  std::mt19937_64 rng(key);
  for (int64_t k = 0; k < options.count; ++k) {
    const int64_t source = std::uniform_int_distribution<int64_t>(0, n - 2 * length)(rng);
    const int64_t destination = std::uniform_int_distribution<int64_t>(source + length, n - length)(rng);
    if (options.random_vocab > 0) {
      std::uniform_int_distribution<int64_t> token(0, options.random_vocab - 1);
      for (int64_t i = 0; i < length; ++i) tokens[source + i] = token(rng);
    }
    std::copy(tokens + source, tokens + source + length, tokens + destination);
  }
}

}  // namespace ttt

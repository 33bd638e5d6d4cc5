// The built-in byte-level tokenizer of the small CPU experiments: ids 0..255 are bytes, 256 is
// BOS and 257 is EOS (vocabulary 258).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ttt {

struct ByteTokenizer {
  static constexpr int64_t kBos = 256;
  static constexpr int64_t kEos = 257;
  static constexpr int64_t kVocabSize = 258;

  std::vector<int32_t> encode(const std::string& text) const;
  // Bytes of the ids below 256; BOS/EOS are dropped. Throws std::invalid_argument for ids >= 258.
  std::string decode(const std::vector<int32_t>& ids) const;
};

}  // namespace ttt

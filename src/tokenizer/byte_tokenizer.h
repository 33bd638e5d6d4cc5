// The built-in byte-level tokenizer of the small CPU experiments: ids 0..255 are bytes, 256 is
// BOS and 257 is EOS (vocabulary 258).
#pragma once

#include "tokenizer/tokenizer.h"

namespace ttt {

class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int32_t kBos = 256;
  static constexpr int32_t kEos = 257;
  static constexpr int64_t kVocabSize = 258;

  std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return kVocabSize; }
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return kEos; }
  std::string name() const override { return "byte"; }
};

}  // namespace ttt

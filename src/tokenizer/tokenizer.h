// Text <-> token ids. Two implementations: the built-in byte tokenizer (256 bytes + BOS + EOS) of
// the small CPU experiments, and Hugging Face `tokenizer.json` byte-level BPE (Llama-3).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ttt {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Ids of `text` without BOS/EOS. Special-token strings in the text are encoded as special
  // tokens only when `allow_special` is true (otherwise as ordinary text).
  virtual std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const = 0;
  // The bytes the ids stand for (special tokens as their text, BOS/EOS of the byte tokenizer as
  // nothing). Throws std::invalid_argument for an id outside the vocabulary.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual std::string name() const = 0;  // "byte" or the tokenizer.json path
};

// "byte" -> the byte tokenizer; otherwise the path of a tokenizer.json, or of a directory holding
// one (directly or under models/). Throws std::runtime_error naming the path on failure.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec);

}  // namespace ttt

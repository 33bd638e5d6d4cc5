// Hugging Face `tokenizer.json` byte-level BPE (Llama-3 and GPT-2 style), reproducing the ids of
// the `tokenizers` library: regex pre-tokenization (pretokenizer.h), bytes mapped to GPT-2's
// byte-level alphabet, BPE merges applied lowest rank first, and added (special) tokens split off
// before all of that.
//
// Supported: model BPE (no dropout, no subword prefix/suffix, no byte fallback, `ignore_merges`
// respected), no normalizer, pre-tokenizer Split(Regex, Isolated) and/or ByteLevel without prefix
// space, decoder ByteLevel. Anything else is rejected at load time rather than silently encoded
// differently. The `lstrip`/`rstrip`/`single_word` flags of added tokens are unsupported
// (Llama-3 sets none of them); loading fails if one is set.
//
// Input must be valid UTF-8 (as a Rust &str is for Hugging Face): encode throws
// std::invalid_argument("invalid UTF-8 at byte offset N") otherwise. decode returns raw bytes, so a
// token sequence cut inside a character decodes to the partial bytes (no U+FFFD substitution).
//
// encode/decode are const and thread-safe: the scratch buffers and the cache of BPE results per
// pre-token (which makes a long text cost mostly regex matching and hash lookups) live in the call.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/token_tables.h"
#include "tokenizer/tokenizer.h"

namespace ttt {

class BpeTokenizer : public Tokenizer {
 public:
  // Throws std::runtime_error naming the path if the file cannot be read, parsed or is unsupported.
  explicit BpeTokenizer(const std::string& tokenizer_json_path);
  // From the text of a tokenizer.json; `name` names it in errors and is its name().
  BpeTokenizer(const std::string& json_text, const std::string& name);
  ~BpeTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  std::string name() const override { return path_; }

  // The id of an added token's text (e.g. "<|eot_id|>"), or -1.
  int32_t added_token_id(std::string_view content) const;

 private:
  using Merge = MergeTable::Merge;
  struct AddedToken {
    std::string content;
    int32_t id;
    bool special;
  };
  struct Workspace;  // per-encode scratch: BPE buffers and the piece cache

  void load(const std::string& json_text);
  void encode_ordinary(std::string_view text, std::vector<int32_t>& ids, Workspace& ws) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>& ids, Workspace& ws) const;
  void merge_piece(std::string_view piece, std::vector<int32_t>& ids, Workspace& ws) const;
  const Merge* find_merge(int32_t left, int32_t right) const;
  // Leftmost-longest added token at or after `from` that is enabled; returns its index or -1.
  int find_added(std::string_view text, std::size_t from, bool allow_special, std::size_t& at) const;

  std::string path_;
  std::unique_ptr<PretokenRegex> regex_;
  bool ignore_merges_ = false;
  std::vector<std::string> id_to_bytes_;  // what each id decodes to (empty for unused ids)
  std::vector<bool> id_defined_;
  TokenBytesTable bytes_to_id_;         // the model's vocabulary, keyed by the bytes of each token
  std::array<int32_t, 256> byte_id_{};  // the single-byte tokens BPE starts from
  MergeTable merges_;
  std::vector<AddedToken> added_;  // longest first, so the first hit at a position is the longest
  std::array<bool, 256> added_first_byte_{};
  bool has_ordinary_added_ = false;  // added tokens that are not special are always split off
  int64_t vocab_size_ = 0;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
};

}  // namespace ttt

#include "data/token_source.h"

#include <algorithm>
#include <random>
#include <stdexcept>

#include "data/zarr/zarr.h"

namespace ttt {

VectorTokenSource::VectorTokenSource(std::vector<int64_t> tokens, std::string description)
    : tokens_(std::move(tokens)), description_(std::move(description)) {}

void VectorTokenSource::read(int64_t start, int64_t count, int64_t* out) {
  if (start < 0 || count < 0 || start + count > size())
    throw std::out_of_range("token read [" + std::to_string(start) + ", " + std::to_string(start + count) +
                            ") outside " + std::to_string(size()) + " tokens of " + description_);
  std::copy(tokens_.begin() + start, tokens_.begin() + start + count, out);
}

ZarrTokenSource::ZarrTokenSource(const std::string& array_dir)
    : dir_(array_dir), reader_(std::make_unique<ZarrArrayReader>(array_dir)) {
  // Zarr reads a missing chunk as the fill value; a token array has every chunk stored, so a
  // missing one (or a shape larger than the chunks hold) is damage, not zeros to train on.
  if (const std::string missing = reader_->first_missing_chunk(); !missing.empty())
    throw ZarrError("zarr: " + array_dir + ": chunk " + missing + " is missing (the shape says " +
                    std::to_string(reader_->size()) + " tokens in chunks of " +
                    std::to_string(reader_->info().chunk_length) + "): a token array has every chunk stored");
}
ZarrTokenSource::~ZarrTokenSource() = default;
int64_t ZarrTokenSource::size() const { return reader_->size(); }
void ZarrTokenSource::read(int64_t start, int64_t count, int64_t* out) { reader_->read(start, count, out); }

std::unique_ptr<TokenSource> dummy_token_source(int64_t num_tokens, int64_t vocab_size, uint64_t seed) {
  std::vector<int64_t> tokens(num_tokens);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> draw(0, std::min<int64_t>(kDummyTokenRange, vocab_size) - 1);
  for (auto& t : tokens) t = draw(rng);
  return std::make_unique<VectorTokenSource>(
      std::move(tokens),
      "dummy dataset (" + std::to_string(num_tokens) + " random tokens, seed " + std::to_string(seed) + ")");
}

}  // namespace ttt

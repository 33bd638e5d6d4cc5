#include "data/sequence_loader.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

namespace ttt {

SequenceLoader::SequenceLoader(std::shared_ptr<const std::vector<int32_t>> tokens, LoaderOptions options)
    : tokens_(std::move(tokens)), options_(options) {
  const int64_t n = static_cast<int64_t>(tokens_->size());
  num_samples_ = n > 0 ? (n - 1) / options_.seq_length : 0;
  if (num_samples_ < options_.batch_size)
    throw std::runtime_error("dataset too small: " + std::to_string(n) + " tokens give " +
                             std::to_string(num_samples_) + " samples of " + std::to_string(options_.seq_length) +
                             " tokens, fewer than one batch of " + std::to_string(options_.batch_size));
}

int64_t SequenceLoader::sample_at(int64_t position) {
  if (!options_.shuffle) return position % num_samples_;
  const int64_t epoch = position / num_samples_;
  if (epoch != permutation_epoch_) {
    permutation_.resize(num_samples_);
    std::iota(permutation_.begin(), permutation_.end(), 0);
    std::mt19937_64 rng(options_.seed * 1000003ULL + static_cast<uint64_t>(epoch));
    std::shuffle(permutation_.begin(), permutation_.end(), rng);
    permutation_epoch_ = epoch;
  }
  return permutation_[position % num_samples_];
}

std::optional<Batch> SequenceLoader::next() {
  const int64_t B = options_.batch_size, T = options_.seq_length;
  if (!options_.repeat && position_ + B > num_samples_) return std::nullopt;
  auto input = torch::empty({B, T}, torch::kInt64), target = torch::empty({B, T}, torch::kInt64);
  auto in = input.accessor<int64_t, 2>(), tg = target.accessor<int64_t, 2>();
  for (int64_t r = 0; r < B; ++r) {
    const int64_t start = sample_at(position_ + r) * T;
    for (int64_t t = 0; t < T; ++t) {
      in[r][t] = (*tokens_)[start + t];
      tg[r][t] = (*tokens_)[start + t + 1];
    }
  }
  position_ += B;
  return Batch{input, target, (target != options_.bos_token_id).to(torch::kFloat32)};
}

std::shared_ptr<const std::vector<int32_t>> dummy_tokens(int64_t num_tokens, int64_t vocab_size, int64_t bos_token_id,
                                                          uint64_t seed) {
  auto tokens = std::make_shared<std::vector<int32_t>>(num_tokens);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> draw(0, static_cast<int32_t>(vocab_size - 2));
  for (auto& t : *tokens) {
    t = draw(rng);
    if (t >= bos_token_id) t += 1;  // skip BOS so every target counts
  }
  return tokens;
}

}  // namespace ttt

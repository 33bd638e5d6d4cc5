#include "data/sequence_loader.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

namespace ttt {

SequenceLoader::SequenceLoader(std::unique_ptr<TokenSource> source, LoaderOptions options)
    : source_(std::move(source)), options_(options) {
  if (options_.world_size < 1 || options_.rank < 0 || options_.rank >= options_.world_size)
    throw std::invalid_argument("loader: rank " + std::to_string(options_.rank) + " outside world size " +
                                std::to_string(options_.world_size));
  const int64_t n = source_->size();
  num_samples_ = n > 0 ? (n - 1) / options_.seq_length : 0;
  const int64_t host_batches = num_samples_ / options_.batch_size;  // drop the partial batch
  batches_per_pass_ = host_batches / options_.world_size;           // equal count on every rank
  if (batches_per_pass_ < 1)
    throw std::runtime_error(source_->describe() + ": " + std::to_string(n) + " tokens give " +
                             std::to_string(num_samples_) + " samples of " + std::to_string(options_.seq_length) +
                             " tokens, fewer than one batch of " + std::to_string(options_.batch_size) +
                             " for each of " + std::to_string(options_.world_size) + " rank(s)");
}

void SequenceLoader::set_position(int64_t position) {
  // The draw index of a position must fit int64 with room for a batch.
  const int64_t max_position = std::numeric_limits<int64_t>::max() / 4;
  if (position < 0 || position > max_position)
    throw std::invalid_argument("loader position " + std::to_string(position) + " is outside [0, " +
                                std::to_string(max_position) + "]");
  position_ = position;
}

int64_t SequenceLoader::sample_index(int64_t position, int64_t row) {
  // This rank's host batch covers draws [position + rank*B, position + (rank+1)*B) of the order.
  const int64_t draw = position + options_.rank * options_.batch_size + row;
  const int64_t usable = batches_per_pass_ * options_.world_size * options_.batch_size;
  const int64_t epoch = draw / usable, within = draw % usable;
  if (!options_.shuffle) return within;
  if (epoch != permutation_epoch_) {
    permutation_.resize(num_samples_);
    std::iota(permutation_.begin(), permutation_.end(), 0);
    std::mt19937_64 rng(options_.seed * 1000003ULL + static_cast<uint64_t>(epoch));
    std::shuffle(permutation_.begin(), permutation_.end(), rng);
    permutation_epoch_ = epoch;
  }
  return permutation_[within];
}

std::optional<Batch> SequenceLoader::next() {
  const int64_t B = options_.batch_size, T = options_.seq_length;
  if (!options_.repeat && position_ >= batches_per_pass_ * global_batch_size()) return std::nullopt;
  auto input = torch::empty({B, T}, torch::kInt64), target = torch::empty({B, T}, torch::kInt64);
  buffer_.resize(T + 1);
  for (int64_t r = 0; r < B; ++r) {
    const int64_t start = sample_index(position_, r) * T;
    source_->read(start, T + 1, buffer_.data());
    if (options_.vocab_size > 0)
      for (int64_t k = 0; k <= T; ++k)
        if (buffer_[k] < 0 || buffer_[k] >= options_.vocab_size)
          throw std::runtime_error(source_->describe() + ": token id " + std::to_string(buffer_[k]) + " at index " +
                                   std::to_string(start + k) + " is outside the model's vocabulary of " +
                                   std::to_string(options_.vocab_size));
    // The draw index (this sequence's place in the global order) keys the copies, as it keys the
    // sample: the same text whatever the world size or the step a run resumed at.
    apply_copy_spans(buffer_.data(), T + 1, options_.copy_spans, options_.seed,
                     position_ + options_.rank * options_.batch_size + r);
    std::copy(buffer_.begin(), buffer_.end() - 1, input[r].data_ptr<int64_t>());
    std::copy(buffer_.begin() + 1, buffer_.end(), target[r].data_ptr<int64_t>());
  }
  position_ += global_batch_size();
  return Batch{input, target, (target != options_.bos_token_id).to(torch::kFloat32)};
}

}  // namespace ttt

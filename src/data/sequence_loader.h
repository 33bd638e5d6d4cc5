// Fixed-length training samples from a 1-D token stream, as the reference's loader cuts them:
// sample i = tokens[i*T : (i+1)*T + 1], count = (N - 1) / T; input = sample[:-1],
// target = sample[1:], loss mask = target != BOS. Training order is a seeded shuffle, reshuffled
// every epoch; evaluation is one ordered pass. The position (samples consumed) is the loader's
// whole state, so a checkpoint can restore it exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "data/batch.h"

namespace ttt {

struct LoaderOptions {
  int64_t seq_length = 1024;
  int64_t batch_size = 8;
  uint64_t seed = 0;
  bool shuffle = true;
  bool repeat = true;  // false: stop after one pass (a last partial batch is dropped)
  int64_t bos_token_id = 1;
};

class SequenceLoader {
 public:
  // Throws std::runtime_error when the stream holds fewer tokens than one sample.
  SequenceLoader(std::shared_ptr<const std::vector<int32_t>> tokens, LoaderOptions options);

  int64_t num_samples() const { return num_samples_; }
  int64_t batches_per_epoch() const { return num_samples_ / options_.batch_size; }
  std::optional<Batch> next();
  int64_t position() const { return position_; }
  void set_position(int64_t position) { position_ = position; }

 private:
  int64_t sample_at(int64_t position);  // which sample the position-th draw is
  std::shared_ptr<const std::vector<int32_t>> tokens_;
  LoaderOptions options_;
  int64_t num_samples_ = 0;
  int64_t position_ = 0;
  int64_t permutation_epoch_ = -1;
  std::vector<int64_t> permutation_;
};

// Uniform random tokens in [0, vocab) excluding BOS (training.dummy_dataset), seeded.
std::shared_ptr<const std::vector<int32_t>> dummy_tokens(int64_t num_tokens, int64_t vocab_size, int64_t bos_token_id,
                                                          uint64_t seed);

}  // namespace ttt

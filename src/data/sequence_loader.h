// Fixed-length samples from a token stream, cut, ordered and sharded as the reference's loader
// does: sample i = tokens[i*T : (i+1)*T + 1], count = (N - 1) / T; input = sample[:-1],
// target = sample[1:], loss mask = target != BOS. Samples are put in a seeded random order
// (training; reshuffled each epoch with the seed and the epoch number) or kept in order
// (evaluation). A global batch is the next world_size * batch_size samples of that order, and rank
// r takes its r-th slice of batch_size (its host batch). The state (`position`) is the global
// sample position: how many samples of the order all ranks together have taken. Restoring it
// reproduces the stream exactly with the same world size, and continues from the same sample with
// another (the order does not depend on the world size when the global batch stays the same).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "data/batch.h"
#include "data/copy_spans.h"
#include "data/token_source.h"

namespace ttt {

struct LoaderOptions {
  int64_t seq_length = 1024;
  int64_t batch_size = 8;  // per rank (host batch)
  uint64_t seed = 0;
  bool shuffle = true;
  bool repeat = true;  // false: one pass; the last partial batch and the batches that would
                       // leave ranks unequal are dropped (every rank takes the same count)
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t bos_token_id = 1;
  int64_t vocab_size = 0;      // > 0: a token id outside [0, vocab_size) is an error naming its position
  CopySpanOptions copy_spans;  // training streams only (training.copy_spans); keyed by the draw index
};

class SequenceLoader {
 public:
  // Throws std::runtime_error when the source holds fewer samples than one batch per rank.
  SequenceLoader(std::unique_ptr<TokenSource> source, LoaderOptions options);

  int64_t num_samples() const { return num_samples_; }
  // Batches this rank takes in one pass (without repeat: in total).
  int64_t batches_per_pass() const { return batches_per_pass_; }
  std::optional<Batch> next();
  // Global samples taken: world_size * batch_size per batch.
  int64_t position() const { return position_; }
  void set_position(int64_t position);
  int64_t global_batch_size() const { return options_.world_size * options_.batch_size; }
  const LoaderOptions& options() const { return options_; }
  const TokenSource& source() const { return *source_; }

  // The sample index this rank reads for row `row` of the global batch starting at global sample
  // position `position`.
  int64_t sample_index(int64_t position, int64_t row);

 private:
  std::unique_ptr<TokenSource> source_;
  LoaderOptions options_;
  int64_t num_samples_ = 0;
  int64_t batches_per_pass_ = 0;
  int64_t position_ = 0;
  int64_t permutation_epoch_ = -1;
  std::vector<int64_t> permutation_;
  std::vector<int64_t> buffer_;
};

}  // namespace ttt

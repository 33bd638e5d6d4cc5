// Where a run's tokens come from: training.dummy_dataset (seeded random tokens), or the zarr
// dataset at training.dataset_path (by default deploy_paths.data[training.dataset_name]), whose
// arrays are named by the split (training.data_split, training.eval_split).
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "data/sequence_loader.h"
#include "data/token_source.h"

namespace ttt {

// Throws ConfigError / ZarrError naming the key or the path.
std::unique_ptr<TokenSource> open_split(const Config& config, const std::string& split);

// The training stream of this rank: shuffled with training.data_seed, repeating, host batches of
// global_batch_size / world_size.
std::unique_ptr<SequenceLoader> make_train_loader(const Config& config, int64_t rank = 0, int64_t world_size = 1);

// Sequences per evaluation batch, the reference's rule: max(training.eval_batch_size,
// 4 * global_batch_size / accum_steps).
int64_t eval_batch_size(const TrainingConfig& training);

// Throws ConfigError unless `world_size` processes can share every evaluation batch equally
// (make_eval_loader checks it).
void check_eval_batch_divides(const TrainingConfig& training, int64_t world_size);

// The same, and every training micro-batch too: what a training run needs (make_train_loader
// checks it; callable before any process starts).
void check_batches_divide(const TrainingConfig& training, int64_t world_size);

// One ordered pass over the eval split in batches of eval_batch_size(), sharded by rank; the last
// partial batch is dropped, as in the reference. Throws when the split holds less than one batch.
std::unique_ptr<SequenceLoader> make_eval_loader(const Config& config, int64_t rank = 0, int64_t world_size = 1);

}  // namespace ttt

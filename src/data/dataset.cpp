#include "data/dataset.h"

#include <filesystem>

#include "data/zarr/zarr.h"

namespace ttt {

std::unique_ptr<TokenSource> open_split(const Config& config, const std::string& split) {
  const auto& t = config.training;
  const auto& m = config.model;
  if (t.dummy_dataset) {
    // Training: up to 2^25 tokens like the reference's dummy source, fewer when a run needs less.
    // Evaluation: four eval batches, a smoke test of the eval path rather than a measurement.
    const int64_t n =
        split == t.eval_split
            ? (t.seq_length + 1) * eval_batch_size(t) * 4 + 1
            : std::min<int64_t>(1 << 25, std::max<int64_t>(1 << 20, (t.seq_length + 1) * t.global_batch_size * 8));
    const uint64_t seed = static_cast<uint64_t>(t.data_seed) * 2 + (split == t.eval_split ? 1 : 0);
    return dummy_token_source(n, m.vocab_size, seed);
  }
  const std::string& path = require(t.dataset_path, "training.dataset_path");
  if (!std::filesystem::exists(path))
    throw ConfigError("training.dataset_path: '" + path + "' does not exist (prepare a dataset with `ttt prepare`)");
  if (!is_zarr_group(path))
    throw ConfigError("training.dataset_path: '" + path +
                      "' is not a zarr dataset (no group zarr.json; prepare one with `ttt prepare`)");
  return std::make_unique<ZarrTokenSource>((std::filesystem::path(path) / split).string());
}

int64_t eval_batch_size(const TrainingConfig& t) {
  return std::max(t.eval_batch_size, t.global_batch_size / t.accum_steps * 4);
}

void check_eval_batch_divides(const TrainingConfig& t, int64_t world_size) {
  if (eval_batch_size(t) % world_size != 0)
    throw ConfigError("the evaluation batch of " + std::to_string(eval_batch_size(t)) +
                      " sequences must be divisible by the number of processes (" + std::to_string(world_size) + ")");
}

void check_batches_divide(const TrainingConfig& t, int64_t world_size) {
  if (t.global_batch_size % (world_size * t.accum_steps) != 0)
    throw ConfigError("training.global_batch_size (" + std::to_string(t.global_batch_size) +
                      ") must be divisible by the number of processes (" + std::to_string(world_size) +
                      ") times training.accum_steps (" + std::to_string(t.accum_steps) +
                      "): every rank takes an equal share of every micro-batch");
  check_eval_batch_divides(t, world_size);
}

std::unique_ptr<SequenceLoader> make_train_loader(const Config& config, int64_t rank, int64_t world_size) {
  const auto& t = config.training;
  check_batches_divide(t, world_size);
  LoaderOptions o;
  o.seq_length = t.seq_length;
  o.batch_size = t.global_batch_size / world_size;
  o.seed = static_cast<uint64_t>(t.data_seed);
  o.rank = rank;
  o.world_size = world_size;
  o.bos_token_id = config.model.bos_token_id;
  o.vocab_size = config.model.vocab_size;
  o.copy_spans = CopySpanOptions{t.copy_spans, t.copy_span_length, t.copy_span_random ? config.model.vocab_size : 0};
  return std::make_unique<SequenceLoader>(open_split(config, t.data_split), o);
}

std::unique_ptr<SequenceLoader> make_eval_loader(const Config& config, int64_t rank, int64_t world_size) {
  const auto& t = config.training;
  const int64_t batch = eval_batch_size(t);
  check_eval_batch_divides(t, world_size);
  auto source = open_split(config, t.eval_split);
  const int64_t samples = source->size() > 0 ? (source->size() - 1) / t.seq_length : 0;
  if (samples < batch)
    throw std::runtime_error(source->describe() + " holds " + std::to_string(samples) + " sequences of " +
                             std::to_string(t.seq_length) + " tokens, fewer than one evaluation batch of " +
                             std::to_string(batch) +
                             " (the reference's max(training.eval_batch_size, 4 * global_batch_size / accum_steps))");
  LoaderOptions o;
  o.seq_length = t.seq_length;
  o.batch_size = batch / world_size;
  o.shuffle = false;
  o.repeat = false;
  o.rank = rank;
  o.world_size = world_size;
  o.bos_token_id = config.model.bos_token_id;
  o.vocab_size = config.model.vocab_size;
  return std::make_unique<SequenceLoader>(std::move(source), o);
}

}  // namespace ttt

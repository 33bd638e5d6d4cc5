#include "train/official_checkpoint.h"

#include <filesystem>
#include <stdexcept>

#include "model/layers.h"
#include "model/official_layout.h"
#include "train/checkpoint.h"
#include "util/safetensors.h"

namespace fs = std::filesystem;

namespace ttt {

std::string import_official_weights(const Config& config, const std::string& weights_file, int64_t step) {
  if (step < 0) throw std::runtime_error("import: the step must be >= 0, got " + std::to_string(step));
  const std::string& checkpoint_dir = require(config.checkpoint.checkpoint_dir, "checkpoint.checkpoint_dir");
  const fs::path step_dir = fs::path(checkpoint_dir) / std::to_string(step);
  // Checked before reading anything: an import never replaces a checkpoint.
  if (fs::exists(step_dir))
    throw std::runtime_error(step_dir.string() + " already exists; import into another step or run");
  const SafetensorsFile file = load_safetensors(weights_file);
  const ModelWeights weights =
      from_official_layout(config.model, file.tensors, scalar_type(config.model.param_dtype), weights_file);
  TrainState state;
  state.step = step;
  Checkpointer(checkpoint_dir, CheckpointPolicy{config.checkpoint.keep_last})
      .save(state, weights, /*optimizer=*/nullptr, config, /*milestone=*/true);
  return step_dir.string();
}

void export_official_weights(const std::string& step_dir, const std::string& out_file) {
  const Config config = load_checkpoint_config(step_dir);
  const ModelWeights weights = checkpoint_weights(step_dir, config.model, torch::kCPU);
  const TrainState state = load_checkpoint_state(step_dir);
  const std::string partial = out_file + ".partial";
  try {
    save_safetensors(
        partial, to_official_layout(config.model, weights),
        {{"format", "ttt-e2e official layout"}, {"source", step_dir}, {"step", std::to_string(state.step)}});
    fs::rename(partial, out_file);
  } catch (...) {
    std::error_code ignored;
    fs::remove(partial, ignored);
    throw;
  }
}

}  // namespace ttt

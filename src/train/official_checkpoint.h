// Checkpoint interop with the official implementation. Its checkpoints are orbax directories
// (`<dir>/<step>/model_weights`, the model's pytree); tools/import_orbax.py and
// tools/export_orbax.py (Python, orbax-checkpoint) turn them into a plain safetensors file of the
// official leaves and back, and this file turns that into one of our checkpoints and back:
//   official weights file: one tensor per official leaf, named as in model/official_layout.h
//   (language_model.model.h.blocks.<name> [L, ...], ...), matrices [in, out].
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"

namespace ttt {

// Writes the official weights file as checkpoint `step` (parameters only, a milestone, so never
// pruned) of the run `config` describes: {checkpoint.checkpoint_dir}/<step>/. Every leaf the
// configuration needs must be there with its stacked shape, nothing else, all finite
// (from_official_layout). Refuses a step that already holds a checkpoint. Returns the step
// directory. Errors are std::runtime_error naming the file or directory.
std::string import_official_weights(const Config& config, const std::string& weights_file, int64_t step);

// Writes the weights of checkpoint `step_dir` as an official weights file at `out_file`
// (atomically: a temporary sibling renamed into place): float32 (float64 parameters stay float64).
void export_official_weights(const std::string& step_dir, const std::string& out_file);

}  // namespace ttt

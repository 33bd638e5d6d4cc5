// Where a run's outputs go: {training.exp_dir}/{training.exp_folder}/{training.exp_name}/
// (config.yaml, metrics.jsonl, eval outputs). Checkpoints go to checkpoint.checkpoint_dir.
#pragma once

#include <filesystem>

#include "config/config.h"

namespace ttt {

inline std::filesystem::path run_directory(const Config& config) {
  const auto& t = config.training;
  return std::filesystem::path(t.exp_dir) / t.exp_folder / require(t.exp_name, "training.exp_name");
}

}  // namespace ttt

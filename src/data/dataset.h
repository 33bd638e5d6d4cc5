// Where a run's tokens come from: training.dummy_dataset (seeded random tokens) or the dataset at
// training.dataset_path. A directory of .txt files is read with the byte tokenizer.
#pragma once

#include <memory>
#include <vector>

#include "config/config.h"

namespace ttt {

struct TokenDataset {
  std::shared_ptr<const std::vector<int32_t>> train;
  std::shared_ptr<const std::vector<int32_t>> val;
  std::string description;  // for logs: what was loaded
};

// Throws ConfigError / std::runtime_error naming the key or the path.
TokenDataset open_dataset(const Config& config);

}  // namespace ttt

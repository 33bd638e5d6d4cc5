// The outer training loop: next batch, loss (meta or pretrain), backward, clip, AdamW step with
// the scheduled learning rate, log; at the end, evaluation on the val split. Outputs go to the
// run directory {exp_dir}/{exp_folder}/{exp_name}/: config.yaml (the resolved configuration),
// metrics.jsonl (one object per step) and eval.json.
#pragma once

#include <filesystem>
#include <memory>

#include "config/config.h"
#include "data/prefetch_loader.h"
#include "model/weights.h"
#include "train/evaluator.h"
#include "train/outer_optimizer.h"

namespace ttt {

struct StepMetrics {
  int64_t step = 0;
  double loss = 0.0;
  double gradient_norm = 0.0;
  double outer_learning_rate = 0.0;
  double inner_learning_rate = 0.0;
  double tokens_per_second = 0.0;
  double wall_time = 0.0;  // seconds since the run started
};

class Trainer {
 public:
  explicit Trainer(Config config);
  // Trains to training.total_steps (or break_step), then evaluates. Returns the evaluation.
  EvalResult train();

  const std::filesystem::path& run_dir() const { return run_dir_; }
  const ModelWeights& weights() const { return weights_; }

 private:
  StepMetrics train_step(int64_t step);
  void log_step(const StepMetrics& m);

  Config config_;
  torch::Device device_;
  std::filesystem::path run_dir_;
  std::unique_ptr<PrefetchLoader> train_loader_;
  ModelWeights weights_;
  std::unique_ptr<OuterOptimizer> optimizer_;
  double start_time_ = 0.0;
};

// The run directory {exp_dir}/{exp_folder}/{exp_name}.
std::filesystem::path run_directory(const Config& config);

}  // namespace ttt

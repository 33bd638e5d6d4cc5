// The outer training loop. Trainer::train() reads as the list of what a step does: next batch,
// loss and gradient (meta or pretrain), clip, AdamW step with the scheduled learning rate, log,
// checkpoint; at the end, evaluation on the eval split (train/evaluator.h). Outputs go to the run
// directory {exp_dir}/{exp_folder}/{exp_name}/ (config.yaml, metrics.jsonl, eval outputs) and
// checkpoints to checkpoint.checkpoint_dir.
//
// Starting a run whose checkpoint directory holds checkpoints resumes from the latest complete
// one (weights, optimizer, loader position, step). Otherwise training.load_part=params|all loads
// another run's checkpoint (checkpoint.resume_checkpoint_dir, i.e. training.resume_exp_name),
// as the reference's extension runs do; training.resume_step picks the step.
//
// Data-parallel (dist/): when the launch describes several processes, each rank reads its slice of
// every global batch, gradients are averaged across ranks before clipping, and the logged loss,
// gradient norm and tokens/s are the global ones. Rank 0 alone writes the run directory and the
// checkpoints; it picks the checkpoint to resume from and every rank loads that one.
#pragma once

#include <filesystem>
#include <memory>

#include "config/config.h"
#include "data/prefetch_loader.h"
#include "dist/grad_reducer.h"
#include "dist/process_group.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "train/evaluator.h"
#include "train/outer_optimizer.h"
#include "train/progress.h"

namespace ttt {

class Trainer {
 public:
  // training.eval_mode runs are evaluations: evaluate_checkpoint(), not a Trainer.
  explicit Trainer(Config config);
  // Trains up to training.total_steps (stopping after training.break_step when > 0), saving
  // checkpoints, then evaluates. Returns the evaluation. SIGUSR1 (train/stop_request.h) ends it
  // early: the step in progress finishes and is checkpointed, and train() returns an empty result
  // with stopped_by_signal() true.
  EvalResult train();
  bool stopped_by_signal() const { return stopped_by_signal_; }

  const std::filesystem::path& run_dir() const { return run_dir_; }
  const ModelWeights& weights() const { return weights_; }
  const ProcessGroup& process_group() const { return *group_; }
  // Seconds spent in gradient all-reduces that the backward pass did not hide.
  double exposed_communication_seconds() const { return reducer_->exposed_communication_seconds(); }
  int64_t start_step() const { return state_.step + 1; }

 private:
  void restore();
  StepMetrics train_step(int64_t step);
  bool should_save(int64_t step, bool* milestone) const;

  Config config_;
  LaunchInfo launch_;
  torch::Device device_;
  std::unique_ptr<ProcessGroup> group_;
  std::filesystem::path run_dir_;
  std::unique_ptr<PrefetchLoader> train_loader_;
  ModelWeights weights_;
  std::unique_ptr<OuterOptimizer> optimizer_;
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<Checkpointer> checkpointer_;  // rank 0 only
  TrainState state_;
  double start_time_ = 0.0;
  bool stopped_by_signal_ = false;
};

}  // namespace ttt

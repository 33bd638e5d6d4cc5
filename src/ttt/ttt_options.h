// How test-time training runs, built once from the configuration: which parameters are fast
// weights, the inner step's learning rate and clip, and the fast weights' dtype. The inner loop,
// evaluation, prefill and decoding all read this one type.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/attention.h"
#include "model/param_layout.h"

namespace ttt {

// A fast weight: a suffix-block parameter selected by training.spec_inner (on split-view names).
struct InnerParam {
  std::string name;          // canonical parameter name
  int64_t suffix_block = 0;  // j in 0 .. suffix_len - 1
  BlockSlot slot = BlockSlot::kWq;
};

// Throws ConfigError when a spec matches nothing or selects a parameter outside the suffix blocks.
std::vector<InnerParam> select_inner_params(const ModelConfig& cfg, const std::vector<std::string>& spec_inner);

// Effective inner learning rate at outer step `step`: optimizer_inner.lr without a warm-up, else
// ilr_init + (lr - ilr_init) * min(1, (step + 1) / ilr_warmup_steps).
double inner_learning_rate(const TrainingConfig& training, int64_t step);

// TTT-layer models: the multiplier of model.ttt_base_lr at outer step `step` (0-based). With a
// warm-up (ttt_base_lr_init and ttt_base_lr_warmup both > 0), as ttt-lm-jax's train.py computes
// it: (init + min(1, step / warmup) * (base - init)) / base, rounded to bfloat16; else 1.
double ttt_layer_lr_multiplier(const ModelConfig& model, int64_t step);

struct TttOptions {
  bool enabled = false;  // a meta model with inner steps on: the suffix blocks read with fast weights
  std::vector<InnerParam> inner;
  double lr = 0.0;    // effective inner learning rate
  double clip = 0.0;  // global-norm clip of a sequence's inner gradient (0: none)
  torch::ScalarType state_dtype = torch::kFloat32;
  // The suffix blocks' attention: twice differentiable in training, where meta-learning
  // differentiates the inner gradients; the fused kernel in evaluation and inference.
  AttentionKernel suffix_attention = AttentionKernel::kMath;
  // TTT-layer models: the inner-lr warm-up's multiplier (ttt_layer_lr_multiplier) in training, 1 in
  // evaluation and inference (as the official evaluation).
  double ttt_layer_lr_mult = 1.0;

  // Training at outer step `step` (its inner learning rate and TTT-layer multiplier).
  static TttOptions for_step(const Config& config, int64_t step);
  // The evaluation that ends training after step `step`: TTT-E2E at that step's inner learning
  // rate (as the reference does), TTT layers at the full rate (as ttt-lm-jax's evaluation does).
  static TttOptions for_end_of_training(const Config& config, int64_t step);
  // Evaluation and inference outside training: the full inner learning rate optimizer_inner.lr,
  // as the reference's eval mode (which runs at a step past any warm-up).
  // `test_time_training` false reads a meta model with its initial fast weights (--no-ttt).
  static TttOptions for_inference(const Config& config, bool test_time_training = true);

  // The inner learning rate a run reports: TTT-E2E's, a TTT-layer model's ttt_base_lr times the
  // multiplier, or 0 for models that do not learn at test time.
  double reported_inner_lr(const ModelConfig& model) const {
    if (enabled) return lr;
    return is_ttt_layer(model.seq_modeling_block) ? model.ttt_base_lr * ttt_layer_lr_mult : 0.0;
  }
};

}  // namespace ttt

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

struct TttOptions {
  bool enabled = false;  // a meta model with inner steps on: the suffix blocks read with fast weights
  std::vector<InnerParam> inner;
  double lr = 0.0;    // effective inner learning rate
  double clip = 0.0;  // global-norm clip of a sequence's inner gradient (0: none)
  torch::ScalarType state_dtype = torch::kFloat32;
  // The suffix blocks' attention: twice differentiable in training, where meta-learning
  // differentiates the inner gradients; the fused kernel in evaluation and inference.
  AttentionKernel suffix_attention = AttentionKernel::kMath;

  // Training at outer step `step` (its inner learning rate), and the evaluation that ends training
  // (at step total_steps - 1, as the reference does).
  static TttOptions for_step(const Config& config, int64_t step);
  // Evaluation and inference outside training: the full inner learning rate optimizer_inner.lr,
  // as the reference's eval mode (which runs at a step past any warm-up).
  // `test_time_training` false reads a meta model with its initial fast weights (--no-ttt).
  static TttOptions for_inference(const Config& config, bool test_time_training = true);
};

}  // namespace ttt

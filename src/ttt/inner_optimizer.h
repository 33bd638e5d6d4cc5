// The inner (test-time) optimiser: plain SGD on the fast weights after a global-norm clip, with
// the inner learning-rate warm-up of the reference.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "config/config.h"

namespace ttt {

// Effective inner learning rate at outer step `step`: optimizer_inner.lr when ilr_warmup_steps
// is 0, else ilr_init + (lr - ilr_init) * min(1, (step + 1) / ilr_warmup_steps).
double inner_learning_rate(const TrainingConfig& training, int64_t step);

// Per-sequence global norm over a set of per-sequence gradients [B, ...] -> [B].
torch::Tensor per_sequence_global_norm(const std::vector<torch::Tensor>& grads);

// One SGD step per sequence: theta - lr * clip(g), where clip scales a sequence's gradients by
// max_norm / norm when norm >= max_norm (max_norm <= 0: no clipping). Differentiable.
std::vector<torch::Tensor> sgd_step(const std::vector<torch::Tensor>& theta, const std::vector<torch::Tensor>& grads,
                                    double lr, double max_norm);

}  // namespace ttt

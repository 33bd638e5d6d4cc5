// The inner (test-time) optimiser: plain SGD on the fast weights after a global-norm clip, per
// sequence (its learning rate, with the reference's warm-up, is in ttt_options.h).
#pragma once

#include <torch/torch.h>

#include <vector>

namespace ttt {

// Per-sequence global norm over a set of per-sequence gradients [B, ...] -> [B].
torch::Tensor per_sequence_global_norm(const std::vector<torch::Tensor>& grads);

// One SGD step per sequence: theta - lr * clip(g), where clip scales a sequence's gradients by
// max_norm / norm when norm >= max_norm (max_norm <= 0: no clipping). Differentiable.
std::vector<torch::Tensor> sgd_step(const std::vector<torch::Tensor>& theta, const std::vector<torch::Tensor>& grads,
                                    double lr, double max_norm);

}  // namespace ttt

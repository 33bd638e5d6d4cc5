// The outer optimiser: global-norm gradient clipping (optax semantics: scale by clip / norm when
// norm >= clip), then AdamW (decoupled weight decay, eps 1e-8) on the parameters selected by
// training.spec_outer, with the embedding excluded from weight decay when emb_wd is false.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "config/config.h"
#include "model/weights.h"

namespace ttt {

class OuterOptimizer {
 public:
  // Marks the selected parameters of `weights` as requiring grad (others are frozen).
  OuterOptimizer(const OptimizerConfig& config, const std::vector<std::string>& spec_outer, ModelWeights& weights);

  void zero_grad();
  // Clips the accumulated gradients and returns their global norm before clipping: a float64
  // scalar on their device, so clipping waits on nothing (no host synchronisation).
  torch::Tensor clip_gradients();
  void step(double learning_rate);

  const std::vector<torch::Tensor>& trainable() const { return trainable_; }
  const std::vector<std::string>& trainable_names() const { return trainable_names_; }

  // AdamW's state per trainable parameter as named tensors: "exp_avg.<param>", "exp_avg_sq.<param>"
  // and "step.<param>" (int64 scalar); parameters not stepped yet have none.
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  // Restores what state_tensors() gave; throws std::runtime_error naming the first missing or
  // mis-shaped entry.
  void load_state_tensors(const std::map<std::string, torch::Tensor>& tensors);

 private:
  OptimizerConfig config_;
  std::vector<torch::Tensor> trainable_;
  std::vector<std::string> trainable_names_;
  std::unique_ptr<torch::optim::AdamW> adamw_;
};

// Global L2 norm of a set of gradients (undefined gradients count as zero): a float64 scalar on
// their device (on the CPU when none is defined).
torch::Tensor global_norm(const std::vector<torch::Tensor>& grads);

// The gradient norm as the reference logs it, sqrt(norm^2 + 1e-5) (its global_norm_safe), so
// logged curves compare; clipping uses the plain norm.
double logged_gradient_norm(double norm);

}  // namespace ttt

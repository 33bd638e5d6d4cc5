// One meta training step's loss and outer gradients in float64, for tests that compare two ways
// of computing them.
#pragma once

#include <torch/torch.h>

#include <utility>
#include <vector>

#include "config/config.h"
#include "data/batch.h"
#include "model/weights.h"
#include "ttt/sequence_loss.h"
#include "ttt/ttt_options.h"

namespace ttt::testing {

// Weights initialised with seed 21 and their matrices scaled by 8 (so that the inner steps move the
// loss), one loss_and_backward with recomputation every `remat_every` chunks and scale 0.5.
inline std::pair<double, std::vector<torch::Tensor>> meta_gradients(const Config& cfg, const Batch& batch,
                                                                    int64_t remat_every) {
  auto w = ModelWeights::initialize(cfg.model, 21, torch::kFloat64);
  for (auto& t : w.tensors())
    if (t.dim() == 2) t.mul_(8.0);
  w.set_requires_grad(true);
  auto out = loss_and_backward(cfg.model, w, batch, TttOptions::for_step(cfg, 0), remat_every, 0.5);
  std::vector<torch::Tensor> grads;
  for (auto& t : w.tensors()) grads.push_back(t.grad().clone());
  return {out.loss.item<double>(), grads};
}

}  // namespace ttt::testing

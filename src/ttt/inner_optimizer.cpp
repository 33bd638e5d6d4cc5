#include "ttt/inner_optimizer.h"

#include <algorithm>

namespace ttt {

torch::Tensor per_sequence_global_norm(const std::vector<torch::Tensor>& grads) {
  torch::Tensor sq;
  for (const auto& g : grads) {
    auto s = g.pow(2).reshape({g.size(0), -1}).sum(1);
    sq = sq.defined() ? sq + s : s;
  }
  return sq.sqrt();
}

std::vector<torch::Tensor> sgd_step(const std::vector<torch::Tensor>& theta, const std::vector<torch::Tensor>& grads,
                                    double lr, double max_norm) {
  torch::Tensor scale;  // [B]; clip / max(norm, clip) equals 1 below the threshold, like optax's select
  if (max_norm > 0) scale = max_norm / per_sequence_global_norm(grads).clamp_min(max_norm);
  std::vector<torch::Tensor> out;
  out.reserve(theta.size());
  for (size_t i = 0; i < theta.size(); ++i) {
    auto g = grads[i];
    if (scale.defined()) {
      std::vector<int64_t> shape(g.dim(), 1);
      shape[0] = g.size(0);
      g = g * scale.view(shape).to(g.scalar_type());
    }
    out.push_back(theta[i] - lr * g);
  }
  return out;
}

}  // namespace ttt

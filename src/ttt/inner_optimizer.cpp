#include "ttt/inner_optimizer.h"

#include <algorithm>

namespace ttt {

namespace {

torch::Tensor per_sequence_sum_of_squares(const std::vector<torch::Tensor>& grads) {
  torch::Tensor sq;
  for (const auto& g : grads) {
    auto s = g.pow(2).reshape({g.size(0), -1}).sum(1);
    sq = sq.defined() ? sq + s : s;
  }
  return sq;
}

}  // namespace

torch::Tensor per_sequence_global_norm(const std::vector<torch::Tensor>& grads) {
  return per_sequence_sum_of_squares(grads).sqrt();
}

std::vector<torch::Tensor> sgd_step(const std::vector<torch::Tensor>& theta, const std::vector<torch::Tensor>& grads,
                                    double lr, double max_norm) {
  // [B]; clip / max(norm, clip) equals 1 below the threshold, like optax's select. A sequence whose
  // gradient is exactly zero (a chunk with no target that counts) takes scale 1 without a square
  // root: sqrt's infinite slope at 0 times the clamp's zero would make the meta-gradient NaN.
  torch::Tensor scale;
  if (max_norm > 0) {
    const auto sq = per_sequence_sum_of_squares(grads);
    const auto nonzero = sq > 0;
    const auto one = torch::ones_like(sq);
    const auto norm = torch::where(nonzero, sq, one).sqrt();
    scale = torch::where(nonzero, max_norm / norm.clamp_min(max_norm), one);
  }
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

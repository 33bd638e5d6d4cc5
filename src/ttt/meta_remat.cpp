#include "ttt/meta_remat.h"

#include "model/transformer.h"

namespace ttt {
namespace {

// A detached copy of the fast state whose tensors are leaves requiring grad, so a recomputation
// from it yields the gradients with respect to the state.
FastState leaf_copy(const FastState& s) {
  FastState out;
  out.next_chunk = s.next_chunk;
  for (const auto& t : s.theta) out.theta.push_back(t.detach().requires_grad_(true));
  for (const auto& c : s.caches)
    out.caches.push_back(KvCache{c.k.detach().requires_grad_(true), c.v.detach().requires_grad_(true)});
  return out;
}

torch::Tensor grad_or_zeros(const torch::Tensor& t) { return t.grad().defined() ? t.grad() : torch::zeros_like(t); }

}  // namespace

SequenceLoss meta_loss_backward_remat(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch,
                                      const TttOptions& options, int64_t chunks_per_group, double scale) {
  const int64_t B = batch.input_ids.size(0), T = batch.input_ids.size(1), b = cfg.mini_batch_size;
  const int64_t C = T / b;
  const int64_t G = (C + chunks_per_group - 1) / chunks_per_group;

  // Forward: no outer graph; remember the fast state at each group start.
  torch::Tensor prefix;
  {
    torch::NoGradGuard no_grad;
    prefix = prefix_forward(cfg, w, batch.input_ids);
  }
  InnerStepOptions forward_step = options.step;
  forward_step.create_graph = false;
  FastState state = init_fast_state(cfg, w, options.inner, B, options.state_dtype, /*through_outer=*/false);
  std::vector<FastState> group_start;
  std::vector<torch::Tensor> chunk_losses, chunk_nll;
  for (int64_t c = 0; c < C; ++c) {
    if (c % chunks_per_group == 0) group_start.push_back(leaf_copy(state));
    auto logits = suffix_chunk_logits(cfg, w, options.inner, state, prefix.slice(1, c * b, (c + 1) * b));
    auto nll = token_nll(logits, batch.targets.slice(1, c * b, (c + 1) * b));
    auto loss_c = masked_mean_nll(nll, batch.loss_mask.slice(1, c * b, (c + 1) * b));
    if (c + 1 < C) take_inner_step(state, loss_c, forward_step);
    chunk_losses.push_back(loss_c.detach());
    chunk_nll.push_back(nll.detach());
  }

  // Backward, group by group in reverse. d_state holds the gradient of the objective with respect
  // to the fast state at the end of the current group (the next group's start).
  InnerStepOptions backward_step = options.step;
  backward_step.create_graph = true;
  const double loss_weight = scale / static_cast<double>(C * B);  // outer loss = mean over chunks and batch
  std::vector<torch::Tensor> d_prefix(G);
  std::vector<torch::Tensor> d_theta;
  std::vector<torch::Tensor> d_cache;  // k0, v0, k1, v1, ...
  for (int64_t g = G - 1; g >= 0; --g) {
    const int64_t c0 = g * chunks_per_group, c1 = std::min(C, c0 + chunks_per_group);
    FastState s = leaf_copy(group_start[g]);
    FastState inputs = s;  // the leaves (shared handles)
    auto prefix_group = prefix.slice(1, c0 * b, c1 * b).detach().requires_grad_(true);
    torch::Tensor objective;
    for (int64_t c = c0; c < c1; ++c) {
      auto logits =
          suffix_chunk_logits(cfg, w, options.inner, s, prefix_group.slice(1, (c - c0) * b, (c - c0 + 1) * b));
      auto nll = token_nll(logits, batch.targets.slice(1, c * b, (c + 1) * b));
      auto loss_c = masked_mean_nll(nll, batch.loss_mask.slice(1, c * b, (c + 1) * b)).sum();
      objective = objective.defined() ? objective + loss_c : loss_c;
      if (c + 1 < C) take_inner_step(s, loss_c.unsqueeze(0), backward_step);
    }
    std::vector<torch::Tensor> outputs{objective * loss_weight}, grad_outputs{torch::ones_like(objective)};
    if (g + 1 < G) {  // the group's end state feeds the next group
      for (size_t k = 0; k < s.theta.size(); ++k) {
        outputs.push_back(s.theta[k]);
        grad_outputs.push_back(d_theta[k]);
      }
      for (size_t j = 0; j < s.caches.size(); ++j) {
        outputs.push_back(s.caches[j].k);
        grad_outputs.push_back(d_cache[2 * j]);
        outputs.push_back(s.caches[j].v);
        grad_outputs.push_back(d_cache[2 * j + 1]);
      }
    }
    torch::autograd::backward(outputs, grad_outputs);
    d_theta.clear();
    d_cache.clear();
    for (auto& t : inputs.theta) d_theta.push_back(grad_or_zeros(t));
    for (auto& c : inputs.caches) {
      d_cache.push_back(grad_or_zeros(c.k));
      d_cache.push_back(grad_or_zeros(c.v));
    }
    d_prefix[g] = grad_or_zeros(prefix_group);
  }

  // The initial fast weights are the outer weights broadcast to every sequence, and the prefix
  // output comes from the embedding and prefix blocks: push the remaining gradients into them.
  std::vector<torch::Tensor> outputs, grad_outputs;
  FastState initial = init_fast_state(cfg, w, options.inner, B, options.state_dtype, /*through_outer=*/true);
  for (size_t k = 0; k < initial.theta.size(); ++k)
    if (initial.theta[k].requires_grad()) {
      outputs.push_back(initial.theta[k]);
      grad_outputs.push_back(d_theta[k]);
    }
  auto prefix_with_graph = prefix_forward(cfg, w, batch.input_ids);
  if (prefix_with_graph.requires_grad()) {
    outputs.push_back(prefix_with_graph);
    grad_outputs.push_back(torch::cat(d_prefix, 1));
  }
  if (!outputs.empty()) torch::autograd::backward(outputs, grad_outputs);

  auto per_sequence = torch::stack(chunk_losses, 1).mean(1);
  return SequenceLoss{per_sequence.mean(), per_sequence, torch::cat(chunk_nll, 1)};
}

}  // namespace ttt

#include "ttt/inner_loop.h"

#include <algorithm>

#include "model/head_loss.h"
#include "model/layers.h"
#include "model/piecewise_recompute.h"
#include "model/transformer.h"
#include "ttt/inner_optimizer.h"

namespace ttt {
namespace {

// Suffix block j with the fast weights in place of the stored inner parameters.
BlockWeights fast_block(const ModelConfig& cfg, const ModelWeights& w, const TttOptions& ttt, const FastState& state,
                        int64_t j) {
  BlockWeights block = w.block(first_suffix_layer(cfg) + j);
  for (size_t k = 0; k < ttt.inner.size(); ++k)
    if (ttt.inner[k].suffix_block == j) block.slot(ttt.inner[k].slot) = state.weights[k];
  return block;
}

// Columns of chunk c of a [B, T, ...] tensor.
torch::Tensor chunk_of(const torch::Tensor& x, int64_t c, int64_t b) { return x.slice(1, c * b, (c + 1) * b); }

// A detached copy of a fast state whose tensors are leaves requiring grad: a recomputation from it
// yields the gradients with respect to the state.
FastState leaf_copy(const FastState& s) {
  FastState out;
  out.position = s.position;
  for (const auto& t : s.weights) out.weights.push_back(t.detach().requires_grad_(true));
  for (const auto& c : s.caches)
    out.caches.push_back(KvCache{c.k.detach().requires_grad_(true), c.v.detach().requires_grad_(true)});
  return out;
}

torch::Tensor grad_or_zeros(const torch::Tensor& t) { return t.grad().defined() ? t.grad() : torch::zeros_like(t); }

SequenceLoss sequence_loss_of(const std::vector<torch::Tensor>& chunk_losses,
                              const std::vector<torch::Tensor>& chunk_nll) {
  auto per_sequence = torch::stack(chunk_losses, 1).mean(1);
  return SequenceLoss{per_sequence.mean(), per_sequence, torch::cat(chunk_nll, 1)};
}

}  // namespace

FastState init_fast_state(const ModelConfig& cfg, const ModelWeights& w, const TttOptions& ttt, int64_t batch,
                          bool through_outer) {
  FastState state;
  for (const auto& param : ttt.inner) {
    const auto& p = w.get(param.name);
    const auto dtype = p.scalar_type() == torch::kFloat64 ? torch::kFloat64 : ttt.state_dtype;
    std::vector<int64_t> shape{batch};
    for (auto s : p.sizes()) shape.push_back(s);
    if (through_outer)
      state.weights.push_back(p.to(dtype).unsqueeze(0).expand(shape));
    else
      state.weights.push_back(p.detach().to(dtype).unsqueeze(0).expand(shape).clone().requires_grad_(true));
  }
  const auto cache_dtype = compute_dtype(w.wte(), cfg.compute_dtype);
  for (int64_t j = 0; j < cfg.suffix_len; ++j)
    state.caches.push_back(empty_kv_cache(cfg, batch, cache_dtype, w.wte().device()));
  return state;
}

torch::Tensor suffix_forward(const ModelConfig& cfg, const ModelWeights& w, const TttOptions& ttt, FastState& state,
                             const torch::Tensor& hidden, const RopeTable* rope) {
  auto x = hidden;
  for (int64_t j = 0; j < cfg.suffix_len; ++j)
    x = block_forward_step(cfg, fast_block(cfg, w, ttt, state, j), x, state.caches[j], state.position,
                           ttt.suffix_attention, rope);
  state.position += hidden.size(1);
  return x;
}

torch::Tensor suffix_forward_windows(const ModelConfig& cfg, const ModelWeights& w, const TttOptions& ttt,
                                     FastState& state, std::vector<WindowCache>& windows, const torch::Tensor& hidden,
                                     const RopeTable& rope) {
  torch::NoGradGuard no_grad;
  auto x = hidden;
  for (int64_t j = 0; j < cfg.suffix_len; ++j) {
    x = block_forward_window(cfg, fast_block(cfg, w, ttt, state, j), x, windows[j], state.position, rope);
    state.caches[j] = window_cache_view(windows[j]);
  }
  state.position += hidden.size(1);
  return x;
}

ChunkStep chunk_step(const ModelConfig& cfg, const ModelWeights& w, const TttOptions& ttt, FastState& state,
                     const torch::Tensor& hidden, const torch::Tensor& targets, const torch::Tensor& mask, bool learn,
                     bool create_graph, bool keep_logits, const RopeTable* rope) {
  ChunkStep out;
  const auto h = suffix_forward(cfg, w, ttt, state, hidden, rope);
  if (!keep_logits && h.size(0) * h.size(1) * w.output_width() > piecewise_budget().head_logits) {
    out.nll = recomputed_head_token_nll(cfg, w, h, targets);
  } else {
    out.logits = lm_head(cfg, w, h);
    out.nll = token_nll(out.logits, targets);
  }
  out.loss = masked_mean_nll(out.nll, mask);
  if (!learn) return out;
  auto grads = torch::autograd::grad({out.loss.sum()}, state.weights, /*grad_outputs=*/{},
                                     /*retain_graph=*/create_graph, /*create_graph=*/create_graph);
  state.weights = sgd_step(state.weights, grads, ttt.lr, ttt.clip);
  if (!create_graph) {
    for (auto& t : state.weights) t = t.detach().requires_grad_(true);
    for (auto& c : state.caches) c = KvCache{c.k.detach(), c.v.detach()};
  }
  return out;
}

SequenceLoss meta_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& ttt,
                       bool create_graph) {
  const int64_t B = batch.input_ids.size(0), b = cfg.mini_batch_size, C = batch.input_ids.size(1) / b;
  const auto prefix = prefix_forward(cfg, w, batch.input_ids);
  FastState state = init_fast_state(cfg, w, ttt, B, /*through_outer=*/create_graph);
  std::vector<torch::Tensor> chunk_losses, chunk_nll;
  for (int64_t c = 0; c < C; ++c) {
    // The last chunk's update would only matter to a following chunk: training skips it.
    auto step = chunk_step(cfg, w, ttt, state, chunk_of(prefix, c, b), chunk_of(batch.targets, c, b),
                           chunk_of(batch.loss_mask, c, b), /*learn=*/c + 1 < C, create_graph,
                           /*keep_logits=*/false);
    chunk_losses.push_back(create_graph ? step.loss : step.loss.detach());
    chunk_nll.push_back(step.nll.detach());
  }
  return sequence_loss_of(chunk_losses, chunk_nll);
}

SequenceLoss meta_loss_backward(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch,
                                const TttOptions& ttt, int64_t chunks_per_group, double scale) {
  const int64_t B = batch.input_ids.size(0), b = cfg.mini_batch_size, C = batch.input_ids.size(1) / b;
  const int64_t G = (C + chunks_per_group - 1) / chunks_per_group;

  // Forward, as meta_loss without a graph for the suffix blocks, remembering the fast state at each
  // group's start. The prefix blocks either keep only each block's input and are recomputed one at
  // a time at the end (model.remat_prefix_block=nothing_saveable, the reference's default) or keep
  // their graph (any other policy: one forward pass fewer, the prefix activations held throughout).
  const bool recompute_prefix = cfg.remat_prefix_block == "nothing_saveable";
  std::vector<torch::Tensor> block_inputs;
  const torch::Tensor prefix_output =
      recompute_prefix ? forward_keeping_block_inputs(cfg, w, batch.input_ids, first_suffix_layer(cfg), block_inputs)
                       : prefix_forward(cfg, w, batch.input_ids);
  const torch::Tensor prefix = prefix_output.detach();  // what the inner loop reads, without the graph
  FastState state = init_fast_state(cfg, w, ttt, B, /*through_outer=*/false);
  std::vector<FastState> group_start;  // the fast weights; the caches are views of `history`
  // Every position's keys and values in each suffix block, once: a group's start caches are the
  // W positions before it (position p at index W + p; zeros before the sequence, as the empty
  // caches). A copy of the caches per group would hold (groups x W) positions instead of T + W.
  std::vector<KvCache> history;
  const int64_t W = state.caches.empty() ? 0 : state.caches[0].k.size(1);
  for (const auto& c : state.caches) {
    auto sizes = c.k.sizes().vec();
    sizes[1] = W + C * b;
    history.push_back(KvCache{torch::zeros(sizes, c.k.options()), torch::zeros(sizes, c.v.options())});
  }
  std::vector<torch::Tensor> chunk_losses, chunk_nll;
  for (int64_t c = 0; c < C; ++c) {
    if (c % chunks_per_group == 0) group_start.push_back(leaf_copy(FastState{state.weights, {}, state.position}));
    auto step = chunk_step(cfg, w, ttt, state, chunk_of(prefix, c, b), chunk_of(batch.targets, c, b),
                           chunk_of(batch.loss_mask, c, b), /*learn=*/c + 1 < C, /*create_graph=*/false,
                           /*keep_logits=*/false);
    for (size_t j = 0; j < history.size(); ++j) {  // the caches now hold positions (c + 1) b - W ..
      history[j].k.slice(1, (c + 1) * b, (c + 1) * b + W).copy_(state.caches[j].k);
      history[j].v.slice(1, (c + 1) * b, (c + 1) * b + W).copy_(state.caches[j].v);
    }
    chunk_losses.push_back(step.loss.detach());
    chunk_nll.push_back(step.nll.detach());
  }

  // Backward, group by group in reverse: recompute the group from its start state with a
  // differentiable inner loop. d_weights / d_caches hold the gradient of the objective with
  // respect to the fast state at the end of the current group (the next group's start).
  const double loss_weight = scale / static_cast<double>(C * B);  // outer loss = mean over chunks and batch
  std::vector<torch::Tensor> d_prefix(G), d_weights, d_caches;    // d_caches: k0, v0, k1, v1, ...
  for (int64_t g = G - 1; g >= 0; --g) {
    const int64_t c0 = g * chunks_per_group, c1 = std::min(C, c0 + chunks_per_group);
    FastState start = group_start[g];
    for (const auto& h : history)
      start.caches.push_back(KvCache{h.k.slice(1, c0 * b, c0 * b + W), h.v.slice(1, c0 * b, c0 * b + W)});
    FastState s = leaf_copy(start);
    const FastState inputs = s;  // the leaves (shared handles)
    auto prefix_group = prefix.slice(1, c0 * b, c1 * b).detach().requires_grad_(true);
    torch::Tensor objective;
    for (int64_t c = c0; c < c1; ++c) {
      auto step = chunk_step(cfg, w, ttt, s, chunk_of(prefix_group, c - c0, b), chunk_of(batch.targets, c, b),
                             chunk_of(batch.loss_mask, c, b), /*learn=*/c + 1 < C, /*create_graph=*/true,
                             /*keep_logits=*/false);
      auto loss_c = step.loss.sum();
      objective = objective.defined() ? objective + loss_c : loss_c;
    }
    std::vector<torch::Tensor> outputs{objective * loss_weight}, grad_outputs{torch::ones_like(objective)};
    if (g + 1 < G) {  // the group's end state feeds the next group
      for (size_t k = 0; k < s.weights.size(); ++k) {
        outputs.push_back(s.weights[k]);
        grad_outputs.push_back(d_weights[k]);
      }
      for (size_t j = 0; j < s.caches.size(); ++j) {
        outputs.push_back(s.caches[j].k);
        grad_outputs.push_back(d_caches[2 * j]);
        outputs.push_back(s.caches[j].v);
        grad_outputs.push_back(d_caches[2 * j + 1]);
      }
    }
    torch::autograd::backward(outputs, grad_outputs);
    d_weights.clear();
    d_caches.clear();
    for (const auto& t : inputs.weights) d_weights.push_back(grad_or_zeros(t));
    for (const auto& c : inputs.caches) {
      d_caches.push_back(grad_or_zeros(c.k));
      d_caches.push_back(grad_or_zeros(c.v));
    }
    d_prefix[g] = grad_or_zeros(prefix_group);
  }

  // The initial fast weights are the outer weights broadcast to every sequence: their gradient
  // goes to the outer weights.
  {
    std::vector<torch::Tensor> outputs, grad_outputs;
    FastState initial = init_fast_state(cfg, w, ttt, B, /*through_outer=*/true);
    for (size_t k = 0; k < initial.weights.size(); ++k)
      if (initial.weights[k].requires_grad()) {
        outputs.push_back(initial.weights[k]);
        grad_outputs.push_back(d_weights[k]);
      }
    if (!outputs.empty()) torch::autograd::backward(outputs, grad_outputs);
  }
  // The prefix output comes from the embedding and the prefix blocks.
  if (recompute_prefix)
    backward_recomputing_blocks(cfg, w, batch.input_ids, block_inputs, torch::cat(d_prefix, 1));
  else if (prefix_output.requires_grad())
    torch::autograd::backward({prefix_output}, {torch::cat(d_prefix, 1)});
  return sequence_loss_of(chunk_losses, chunk_nll);
}

}  // namespace ttt

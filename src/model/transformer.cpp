#include "model/transformer.h"

#include "model/layers.h"

namespace ttt {
namespace {

// h + post_norm(f(pre_norm(h))), honouring model.pre_norm / model.post_norm.
template <typename F>
torch::Tensor residual(const ModelConfig& cfg, const torch::Tensor& h, const torch::Tensor& pre,
                       const torch::Tensor& post, F&& f) {
  auto x = cfg.pre_norm ? rms_norm(h, pre, cfg.rms_norm_eps) : h;
  auto y = f(x);
  if (cfg.post_norm) y = rms_norm(y, post, cfg.rms_norm_eps);
  return h + y.to(h.scalar_type());
}

torch::Tensor mlps(const ModelConfig& cfg, const BlockWeights& w, torch::Tensor h) {
  const DType compute = cfg.compute_dtype;
  if (w.has_prime)
    h = residual(cfg, h, w.prime_norm, w.prime_post_norm,
                 [&](const torch::Tensor& x) { return swiglu(x, w.prime.w1, w.prime.w2, w.prime.w3, compute); });
  return residual(cfg, h, w.ffn_norm, w.ffn_post_norm,
                  [&](const torch::Tensor& x) { return swiglu(x, w.ffn.w1, w.ffn.w2, w.ffn.w3, compute); });
}

}  // namespace

torch::Tensor embed(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids) {
  auto table = w.wte();
  return torch::embedding(table, ids).to(compute_dtype(table, cfg.compute_dtype));
}

FullSequenceAttention full_sequence_attention(const ModelConfig& cfg, int64_t seq_len) {
  if (cfg.seq_modeling_block == SeqModelingBlock::kSlidingWindow) return {cfg.sliding_window_size, 0};
  // The reference's self_attention in pretrain mode sees only its own mini-batch chunk.
  return {0, cfg.mini_batch_size < seq_len ? cfg.mini_batch_size : 0};
}

torch::Tensor block_forward(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h,
                            const FullSequenceAttention& attn) {
  auto out = residual(cfg, h, w.seq_norm, w.seq_post_norm, [&](const torch::Tensor& x) {
    return attention_full_sequence(cfg, w.attn, x, attn.window, attn.segment);
  });
  return mlps(cfg, w, out);
}

torch::Tensor block_forward_step(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h, KvCache& cache,
                                 int64_t start_position, AttentionKernel kernel, const RopeTable* rope) {
  auto out = residual(cfg, h, w.seq_norm, w.seq_post_norm, [&](const torch::Tensor& x) {
    return attention_step(cfg, w.attn, x, cache, start_position, kernel, rope);
  });
  return mlps(cfg, w, out);
}

torch::Tensor block_forward_step_growing(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h,
                                         GrowingKvCache& cache) {
  auto out = residual(cfg, h, w.seq_norm, w.seq_post_norm,
                      [&](const torch::Tensor& x) { return attention_step_growing(cfg, w.attn, x, cache); });
  return mlps(cfg, w, out);
}

torch::Tensor blocks_forward(const ModelConfig& cfg, const ModelWeights& w, torch::Tensor h, int64_t begin,
                             int64_t end) {
  const auto attn = full_sequence_attention(cfg, h.size(1));
  for (int64_t i = begin; i < end; ++i) h = block_forward(cfg, w.block(i), h, attn);
  return h;
}

torch::Tensor forward_keeping_block_inputs(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids,
                                           int64_t end, std::vector<torch::Tensor>& inputs) {
  torch::NoGradGuard no_grad;
  const auto attn = full_sequence_attention(cfg, ids.size(1));
  auto h = embed(cfg, w, ids);
  inputs.clear();
  for (int64_t i = 0; i < end; ++i) {
    inputs.push_back(h);
    h = block_forward(cfg, w.block(i), h, attn);
  }
  return h;
}

void backward_recomputing_blocks(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids,
                                 std::vector<torch::Tensor>& inputs, const torch::Tensor& d_output) {
  const int64_t n = static_cast<int64_t>(inputs.size());
  // trains_below[i]: the embedding or one of blocks [0, i) has a weight that trains.
  std::vector<bool> trains_below(n + 1, w.wte().requires_grad());
  for (int64_t i = 0; i < n; ++i) trains_below[i + 1] = trains_below[i] || w.block_requires_grad(i);
  const auto attn = full_sequence_attention(cfg, d_output.size(1));
  torch::Tensor d = d_output;
  for (int64_t i = n - 1; i >= 0 && trains_below[i + 1]; --i) {
    auto input = inputs[i].detach().requires_grad_(trains_below[i]);
    torch::autograd::backward({block_forward(cfg, w.block(i), input, attn)}, {d});
    d = input.grad();
    inputs[i] = torch::Tensor();
  }
  if (w.wte().requires_grad()) torch::autograd::backward({embed(cfg, w, ids)}, {d});
}

torch::Tensor prefix_forward(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids) {
  return blocks_forward(cfg, w, embed(cfg, w, ids), 0, first_suffix_layer(cfg));
}

torch::Tensor full_sequence_logits(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids) {
  return lm_head(cfg, w, blocks_forward(cfg, w, embed(cfg, w, ids), 0, cfg.num_hidden_layers));
}

torch::Tensor lm_head(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& h) {
  auto x = rms_norm(h, w.ln_f(), cfg.rms_norm_eps);
  const auto compute = compute_dtype(x, cfg.compute_dtype);
  return torch::matmul(x.to(compute), lm_head_weight(cfg, w, compute));
}

torch::Tensor lm_head_weight(const ModelConfig& cfg, const ModelWeights& w, torch::ScalarType compute) {
  return cfg.tie_word_embeddings ? w.wte().to(compute).t() : w.lm_head().to(compute);
}

torch::Tensor token_nll(const torch::Tensor& logits, const torch::Tensor& targets) {
  auto logp = torch::log_softmax(logits.to(accumulation_dtype(logits)), -1);
  return -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
}

torch::Tensor masked_mean_nll(const torch::Tensor& nll, const torch::Tensor& mask) {
  auto m = mask.to(nll.scalar_type());
  return (nll * m).sum(-1) / m.sum(-1).clamp_min(1e-10);
}

}  // namespace ttt

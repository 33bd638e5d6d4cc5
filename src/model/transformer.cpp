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

FullSequenceAttention full_sequence_attention(const ModelConfig& cfg, int64_t seq_len, double ttt_lr_mult) {
  // A TTT layer's dual form relates the tokens of each mini-batch as chunk-local attention would
  // (what the FLOP and memory estimates read from this).
  if (is_ttt_layer(cfg.seq_modeling_block)) return {0, cfg.mini_batch_size, ttt_lr_mult};
  if (cfg.seq_modeling_block == SeqModelingBlock::kSlidingWindow) return {cfg.sliding_window_size, 0};
  // The reference's self_attention in pretrain mode sees only its own mini-batch chunk.
  return {0, cfg.mini_batch_size < seq_len ? cfg.mini_batch_size : 0};
}

TttLayerOptions ttt_layer_options(const ModelConfig& cfg, double lr_mult) {
  TttLayerOptions o;
  o.inner = is_ttt_mlp(cfg.seq_modeling_block) ? TttInnerModel::kMlp : TttInnerModel::kLinear;
  o.mamba_backbone = is_ttt_mamba_backbone(cfg.seq_modeling_block);
  o.num_heads = cfg.num_attention_heads;
  o.mini_batch_size = cfg.mini_batch_size;
  o.base_lr = cfg.ttt_base_lr;
  o.lr_mult = lr_mult;
  o.rope_theta = cfg.rope_theta;
  o.rope_precision = cfg.rope_precision;
  o.remat_group = cfg.remat_mini_batch_group_size;
  return o;
}

TttLayerWeights ttt_layer_weights(const BlockWeights& w) {
  TttLayerWeights out = w.ttt;
  out.wq = w.attn.wq;
  out.wk = w.attn.wk;
  out.wv = w.attn.wv;
  out.wo = w.attn.wo;
  return out;
}

TttBlockState ttt_block_initial_state(const ModelConfig& cfg, const BlockWeights& w, int64_t batch) {
  TttBlockState s;
  if (cfg.pre_conv)
    s.pre_conv_history = torch::zeros({batch, cfg.conv_width - 1, cfg.hidden_size}, w.pre_conv_weight.options());
  s.layer = ttt_initial_state(ttt_layer_options(cfg), ttt_layer_weights(w), batch);
  return s;
}

torch::Tensor ttt_block_forward(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h,
                                TttBlockState& state, double lr_mult) {
  torch::Tensor out = h;
  if (cfg.pre_conv)
    out = out + causal_depthwise_conv(rms_norm(out, w.pre_conv_norm, cfg.rms_norm_eps), w.pre_conv_weight,
                                      w.pre_conv_bias, state.pre_conv_history)
                    .to(out.scalar_type());
  const auto options = ttt_layer_options(cfg, lr_mult);
  const auto weights = ttt_layer_weights(w);
  out = residual(cfg, out, w.seq_norm, w.seq_post_norm,
                 [&](const torch::Tensor& x) { return ttt_layer_forward(options, weights, x, state.layer); });
  return mlps(cfg, w, out);
}

torch::Tensor block_forward(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h,
                            const FullSequenceAttention& attn) {
  if (is_ttt_layer(cfg.seq_modeling_block)) {
    auto state = ttt_block_initial_state(cfg, w, h.size(0));
    return ttt_block_forward(cfg, w, h, state, attn.ttt_lr_mult);
  }
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

torch::Tensor block_forward_window(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h,
                                   WindowCache& cache, int64_t start_position, const RopeTable& rope) {
  auto out = residual(cfg, h, w.seq_norm, w.seq_post_norm, [&](const torch::Tensor& x) {
    return attention_step_window(cfg, w.attn, x, cache, start_position, rope);
  });
  return mlps(cfg, w, out);
}

torch::Tensor block_forward_step_growing(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h,
                                         GrowingKvCache& cache) {
  auto out = residual(cfg, h, w.seq_norm, w.seq_post_norm,
                      [&](const torch::Tensor& x) { return attention_step_growing(cfg, w.attn, x, cache); });
  return mlps(cfg, w, out);
}

torch::Tensor blocks_forward(const ModelConfig& cfg, const ModelWeights& w, torch::Tensor h, int64_t begin, int64_t end,
                             double ttt_lr_mult) {
  const auto attn = full_sequence_attention(cfg, h.size(1), ttt_lr_mult);
  for (int64_t i = begin; i < end; ++i) h = block_forward(cfg, w.block(i), h, attn);
  return h;
}

torch::Tensor forward_keeping_block_inputs(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids,
                                           int64_t end, std::vector<torch::Tensor>& inputs, double ttt_lr_mult) {
  torch::NoGradGuard no_grad;
  const auto attn = full_sequence_attention(cfg, ids.size(1), ttt_lr_mult);
  auto h = embed(cfg, w, ids);
  inputs.clear();
  for (int64_t i = 0; i < end; ++i) {
    inputs.push_back(h);
    h = block_forward(cfg, w.block(i), h, attn);
  }
  return h;
}

void backward_recomputing_blocks(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids,
                                 std::vector<torch::Tensor>& inputs, const torch::Tensor& d_output,
                                 double ttt_lr_mult) {
  const int64_t n = static_cast<int64_t>(inputs.size());
  // trains_below[i]: the embedding or one of blocks [0, i) has a weight that trains.
  std::vector<bool> trains_below(n + 1, w.wte().requires_grad());
  for (int64_t i = 0; i < n; ++i) trains_below[i + 1] = trains_below[i] || w.block_requires_grad(i);
  const auto attn = full_sequence_attention(cfg, d_output.size(1), ttt_lr_mult);
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
  return linear(x, lm_head_weight(cfg, w, compute), cfg.compute_dtype);
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

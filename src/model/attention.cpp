#include "model/attention.h"

#include <cmath>

#include "model/layers.h"

namespace ttt {
namespace {

struct Qkv {
  torch::Tensor q, k, v;  // [B, T, H, d]; q and k QK-normed, no RoPE yet
};

Qkv project_qkv(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x) {
  const auto compute = dtype_from_name(cfg.compute_dtype);
  const int64_t B = x.size(0), T = x.size(1), H = cfg.num_attention_heads;
  const int64_t d = cfg.hidden_size / H;
  Qkv out{linear(x, w.wq, compute).view({B, T, H, d}), linear(x, w.wk, compute).view({B, T, H, d}),
          linear(x, w.wv, compute).view({B, T, H, d})};
  if (cfg.qk_norm) {
    out.q = rms_norm(out.q, w.q_norm, cfg.rms_norm_eps);
    out.k = rms_norm(out.k, w.k_norm, cfg.rms_norm_eps);
  }
  return out;
}

torch::Tensor output_projection(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& o) {
  return linear(o.reshape({o.size(0), o.size(1), -1}), w.wo, dtype_from_name(cfg.compute_dtype));
}

torch::Tensor positions(int64_t start, int64_t end, torch::Device device) {
  return torch::arange(start, end, torch::TensorOptions().dtype(torch::kInt64).device(device));
}

}  // namespace

KvCache empty_kv_cache(const ModelConfig& cfg, int64_t batch, torch::ScalarType dtype, torch::Device device) {
  const int64_t H = cfg.num_attention_heads, d = cfg.hidden_size / H, W = cfg.sliding_window_size;
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  return KvCache{torch::zeros({batch, W, H, d}, opts), torch::zeros({batch, W, H, d}, opts)};
}

torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto qh = q.transpose(1, 2), kh = k.transpose(1, 2), vh = v.transpose(1, 2);  // [B, H, T, d]
  auto scores = torch::matmul(qh, kh.transpose(-2, -1)) * scale;                 // [B, H, Tq, Tk]
  // Softmax in float32 (float64 stays float64) whatever the compute dtype.
  const auto acc = q.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  scores = scores.to(acc).masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  auto probs = torch::softmax(scores, -1).to(v.scalar_type());
  return torch::matmul(probs, vh).transpose(1, 2);  // [B, Tq, H, d]
}

torch::Tensor attention_full_sequence(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x,
                                      int64_t window, int64_t segment) {
  const int64_t T = x.size(1);
  auto qkv = project_qkv(cfg, w, x);
  auto pos = positions(0, T, x.device());
  auto q = apply_rope(qkv.q, pos, cfg.rope_theta);
  auto k = apply_rope(qkv.k, pos, cfg.rope_theta);
  // Query blocks: with a window, a block of W/4 queries sees at most W + W/4 - 1 keys, so the
  // scores hold 1.25x the useful work (2x with blocks of W) and never a T x T matrix.
  const int64_t block = window > 0 ? std::min<int64_t>(std::max<int64_t>(window / 4, 64), T)
                                   : std::min<int64_t>(T, 1024);
  std::vector<torch::Tensor> outs;
  for (int64_t s = 0; s < T; s += block) {
    const int64_t e = std::min(T, s + block);
    int64_t ks = window > 0 ? std::max<int64_t>(0, s - window + 1) : 0;
    if (segment > 0) ks = std::max(ks, (s / segment) * segment);
    auto qi = positions(s, e, x.device()).unsqueeze(1);
    auto ki = positions(ks, e, x.device()).unsqueeze(0);
    auto mask = qi >= ki;
    if (window > 0) mask = mask & (qi - ki < window);
    if (segment > 0) mask = mask & (qi.div(segment, "floor") == ki.div(segment, "floor"));
    outs.push_back(masked_attention(q.slice(1, s, e), k.slice(1, ks, e), qkv.v.slice(1, ks, e), mask));
  }
  return output_projection(cfg, w, outs.size() == 1 ? outs[0] : torch::cat(outs, 1));
}

torch::Tensor attention_chunk(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x,
                              KvCache& cache, int64_t chunk_index) {
  const int64_t b = x.size(1), W = cache.k.size(1);
  auto qkv = project_qkv(cfg, w, x);
  auto keys = torch::cat({cache.k, qkv.k.to(cache.k.scalar_type())}, 1);  // [B, W + b, H, d]
  auto values = torch::cat({cache.v, qkv.v.to(cache.v.scalar_type())}, 1);
  auto q = apply_rope(qkv.q, positions(W, W + b, x.device()), cfg.rope_theta);
  auto k = apply_rope(keys, positions(0, W + b, x.device()), cfg.rope_theta);
  // Absolute indices: query i is token c*b + i, key j is token c*b - W + j. Keys before the start
  // of the sequence are the cache's zero initialisation and stay hidden.
  auto qi = positions(chunk_index * b, (chunk_index + 1) * b, x.device()).unsqueeze(1);
  auto ki = positions(chunk_index * b - W, (chunk_index + 1) * b, x.device()).unsqueeze(0);
  auto mask = (qi >= ki) & (qi - ki < W) & (ki >= 0);
  auto out = masked_attention(q, k, values.to(q.scalar_type()), mask);
  cache = KvCache{keys.slice(1, b, W + b), values.slice(1, b, W + b)};
  return output_projection(cfg, w, out);
}

}  // namespace ttt

#include "model/attention.h"

#include <algorithm>
#include <cmath>

#include "model/layers.h"
#include "model/piecewise_recompute.h"
#include "util/torch_compat.h"

namespace ttt {
namespace {

struct Qkv {
  torch::Tensor q, k, v;  // [B, T, H, d]; q and k QK-normed, no RoPE yet
};

Qkv project_qkv(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), H = cfg.num_attention_heads;
  const int64_t d = cfg.hidden_size / H;
  Qkv out{linear(x, w.wq, cfg.compute_dtype).view({B, T, H, d}), linear(x, w.wk, cfg.compute_dtype).view({B, T, H, d}),
          linear(x, w.wv, cfg.compute_dtype).view({B, T, H, d})};
  if (cfg.qk_norm) {
    out.q = rms_norm(out.q, w.q_norm, cfg.rms_norm_eps);
    out.k = rms_norm(out.k, w.k_norm, cfg.rms_norm_eps);
  }
  return out;
}

// The loop of single_query_attention is written for the CPU's float32/float64 BLAS products.
bool on_cpu_blas(const torch::Tensor& t) {
  return t.device().is_cpu() && (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kFloat64);
}

torch::Tensor output_projection(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& o) {
  return linear(o.reshape({o.size(0), o.size(1), -1}), w.wo, cfg.compute_dtype);
}

torch::Tensor positions(int64_t start, int64_t end, torch::Device device) {
  return torch::arange(start, end, torch::TensorOptions().dtype(torch::kInt64).device(device));
}

// Which keys the queries at absolute positions [q_begin, q_end) see of the keys at
// [k_begin, k_end): earlier or the same position, within the window (> 0), within the same aligned
// segment (> 0), and never a position before the sequence. [queries, keys], true = attend.
torch::Tensor visibility_mask(int64_t q_begin, int64_t q_end, int64_t k_begin, int64_t k_end, int64_t window,
                              int64_t segment, torch::Device device) {
  auto qi = positions(q_begin, q_end, device).unsqueeze(1);
  auto ki = positions(k_begin, k_end, device).unsqueeze(0);
  auto mask = qi >= ki;
  if (window > 0) mask = mask & (qi - ki < window);
  if (segment > 0) mask = mask & (qi.div(segment, "floor") == ki.div(segment, "floor"));
  if (k_begin < 0) mask = mask & (ki >= 0);
  return mask;
}

// Math-kernel attention as a piecewise op (model/piecewise_recompute.h): blocks of queries, each
// against only the keys it can see, recomputed in the backward passes instead of keeping their
// scores. q [B, Tq, H, d] at the absolute positions q_begin.., k and v [B, Tk, H, d] at k_begin..
// -> [B, Tq, H, d]; visibility as visibility_mask.
torch::Tensor piecewise_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  int64_t q_begin, int64_t k_begin, int64_t window, int64_t segment) {
  const int64_t B = q.size(0), Tq = q.size(1), H = q.size(2), Tk = k.size(1);
  const int64_t widest = window > 0 ? std::min(window, Tk) : segment > 0 ? std::min(segment, Tk) : Tk;
  const int64_t block =
      std::min(Tq, std::max<int64_t>(16, piecewise_budget().piece / std::max<int64_t>(1, B * H * widest)));
  auto op = c10::make_intrusive<PiecewiseOp>();
  // Per piece: absolute positions of its first query and first key.
  std::vector<std::pair<int64_t, int64_t>> starts;
  for (int64_t s = 0; s < Tq; s += block) {
    const int64_t e = std::min(Tq, s + block), first_query = q_begin + s, last_query = q_begin + e - 1;
    int64_t first_key = std::max<int64_t>(k_begin, 0);
    if (window > 0) first_key = std::max(first_key, first_query - window + 1);
    if (segment > 0) first_key = std::max(first_key, (first_query / segment) * segment);
    const int64_t key_end = std::min(last_query + 1, k_begin + Tk);
    const Span keys{1, first_key - k_begin, key_end - k_begin};
    op->pieces.push_back(Piece{{Span{1, s, e}, keys, keys}, Span{1, s, e}});
    starts.emplace_back(first_query, first_key);
  }
  op->run = [starts, window, segment](const std::vector<torch::Tensor>& parts, size_t p) {
    const auto [first_query, first_key] = starts[p];
    const auto mask = visibility_mask(first_query, first_query + parts[0].size(1), first_key,
                                      first_key + parts[1].size(1), window, segment, parts[0].device());
    return std::vector<torch::Tensor>{masked_attention(parts[0], parts[1], parts[2], mask, AttentionKernel::kMath)};
  };
  return run_piecewise(op, {q, k, v})[0];
}

}  // namespace

RopeTable attention_rope_table(const ModelConfig& cfg, int64_t begin, int64_t end, torch::ScalarType acc,
                               torch::Device device) {
  return rope_table(cfg.hidden_size / cfg.num_attention_heads, cfg.rope_theta, begin, end, acc, device,
                    cfg.rope_precision);
}

KvCache empty_kv_cache(const ModelConfig& cfg, int64_t batch, torch::ScalarType dtype, torch::Device device) {
  const int64_t H = cfg.num_attention_heads, d = cfg.hidden_size / H, W = cfg.sliding_window_size;
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  return KvCache{torch::zeros({batch, W, H, d}, opts), torch::zeros({batch, W, H, d}, opts)};
}

torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask, AttentionKernel kernel) {
  auto qh = q.transpose(1, 2), kh = k.transpose(1, 2), vh = v.transpose(1, 2);  // [B, H, T, d]
  if (kernel == AttentionKernel::kFused && q.size(1) == 1 && !mask.defined() && !torch::GradMode::is_enabled() &&
      on_cpu_blas(q))
    return single_query_attention(q, kh, vh);
  if (kernel == AttentionKernel::kFused && fused_attention_enabled())
    return fused_attention(qh, kh, vh, mask, /*causal=*/false).transpose(1, 2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(qh, kh.transpose(-2, -1)) * scale;  // [B, H, Tq, Tk]
  // Softmax in float32 (float64 stays float64) whatever the compute dtype.
  scores = scores.to(accumulation_dtype(q));
  if (mask.defined()) scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  auto probs = torch::softmax(scores, -1).to(v.scalar_type());
  return torch::matmul(probs, vh).transpose(1, 2);  // [B, Tq, H, d]
}

torch::Tensor single_query_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  TORCH_CHECK(on_cpu_blas(q) && q.size(1) == 1, "single_query_attention: one float32/float64 query on the CPU");
  const int64_t B = q.size(0), H = q.size(2), T = k.size(2), d = q.size(3);
  auto scores = torch::empty({B, H, T}, q.options());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      auto row = scores[b][h];
      torch::mv_out(row, k[b][h], q[b][0][h]);
    }
  const auto probs = torch::softmax(scores.mul_(1.0 / std::sqrt(static_cast<double>(d))), -1);
  auto out = torch::empty({B, 1, H, d}, q.options());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      auto row = out[b][0][h];
      torch::mv_out(row, v[b][h].t(), probs[b][h]);
    }
  return out;
}

namespace {

// Causal attention within aligned segments of `segment` tokens (the whole sequence when 0),
// through the fused kernel's own causal mask: q, k, v [B, T, H, d] -> [B, T, H, d].
torch::Tensor fused_causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     int64_t segment) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), d = q.size(3);
  const int64_t S = segment > 0 ? segment : T;
  auto split = [&](const torch::Tensor& t) { return t.reshape({B * (T / S), S, H, d}).transpose(1, 2); };
  auto out = fused_attention(split(q), split(k), split(v), torch::Tensor(), /*causal=*/true);
  return out.transpose(1, 2).reshape({B, T, H, d});
}

}  // namespace

std::vector<QueryBlock> full_sequence_query_blocks(int64_t T, int64_t window, int64_t segment) {
  const int64_t block =
      window > 0 ? std::min<int64_t>(std::max<int64_t>(window / 4, 64), T) : std::min<int64_t>(T, 1024);
  std::vector<QueryBlock> blocks;
  for (int64_t s = 0; s < T; s += block) {
    int64_t first_key = window > 0 ? std::max<int64_t>(0, s - window + 1) : 0;
    if (segment > 0) first_key = std::max(first_key, (s / segment) * segment);
    blocks.push_back({s, std::min(T, s + block), first_key});
  }
  return blocks;
}

int64_t full_sequence_score_elements(int64_t batch, int64_t heads, int64_t T, int64_t window, int64_t segment) {
  int64_t scores = 0;
  for (const auto& b : full_sequence_query_blocks(T, window, segment))
    scores += batch * heads * (b.end - b.begin) * (b.end - b.first_key);
  return scores;
}

int64_t step_score_elements(int64_t batch, int64_t heads, int64_t n, int64_t window) {
  return batch * heads * n * (window + n);
}

torch::Tensor attention_full_sequence(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x,
                                      int64_t window, int64_t segment) {
  const int64_t T = x.size(1);
  auto qkv = project_qkv(cfg, w, x);
  const auto rope = attention_rope_table(cfg, 0, T, accumulation_dtype(qkv.q), x.device());
  auto q = apply_rope(qkv.q, rope, 0);
  auto k = apply_rope(qkv.k, rope, 0);
  if (fused_attention_enabled() && window <= 0 && (segment <= 0 || T % segment == 0))
    return output_projection(cfg, w, fused_causal_attention(q, k, qkv.v, segment));
  const auto blocks = full_sequence_query_blocks(T, window, segment);
  // Piecewise only for the math kernel: the fused ones keep no scores either.
  if (!fused_attention_enabled() &&
      full_sequence_score_elements(x.size(0), q.size(2), T, window, segment) > piecewise_budget().attention_scores)
    return output_projection(cfg, w, piecewise_attention(q, k, qkv.v, 0, 0, window, segment));
  // Queries, keys and values are split once into the query blocks' pieces; a block's keys are
  // the pieces it can see, joined. Slicing the whole sequence per block instead costs a
  // sequence-sized gradient per block in the backward pass (quadratic in T).
  const int64_t size = blocks[0].end - blocks[0].begin;
  const auto q_pieces = q.split(size, 1), k_pieces = k.split(size, 1), v_pieces = qkv.v.split(size, 1);
  auto keys_of = [&](const std::vector<torch::Tensor>& pieces, const QueryBlock& b) {
    const int64_t first = b.first_key / size, last = (b.end - 1) / size;
    auto joined = first == last
                      ? pieces[first]
                      : torch::cat(std::vector<torch::Tensor>(pieces.begin() + first, pieces.begin() + last + 1), 1);
    return joined.slice(1, b.first_key - first * size, b.end - first * size);
  };
  std::vector<torch::Tensor> outs;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const QueryBlock& b = blocks[i];
    const auto mask = visibility_mask(b.begin, b.end, b.first_key, b.end, window, segment, x.device());
    outs.push_back(
        masked_attention(q_pieces[i], keys_of(k_pieces, b), keys_of(v_pieces, b), mask, AttentionKernel::kFused));
  }
  return output_projection(cfg, w, outs.size() == 1 ? outs[0] : torch::cat(outs, 1));
}

torch::Tensor attention_step(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x, KvCache& cache,
                             int64_t start_position, AttentionKernel kernel, const RopeTable* rope) {
  const int64_t n = x.size(1), W = cache.k.size(1);
  auto qkv = project_qkv(cfg, w, x);
  auto keys = torch::cat({cache.k, qkv.k.to(cache.k.scalar_type())}, 1);  // [B, W + n, H, d]
  auto values = torch::cat({cache.v, qkv.v.to(cache.v.scalar_type())}, 1);
  // RoPE at local positions: keys 0 .. W + n - 1, queries W .. W + n - 1. Without a table (the
  // inner loop's chunks) each gets the angles of exactly its own positions, computed the same way
  // under any thread count, so training stays bitwise what it was before tables existed.
  const auto acc = accumulation_dtype(qkv.q);
  const bool tabled = rope != nullptr && rope->covers(W + n, acc);
  const RopeTable key_angles = tabled ? *rope : attention_rope_table(cfg, 0, W + n, acc, x.device());
  const RopeTable query_angles = tabled ? *rope : attention_rope_table(cfg, W, W + n, acc, x.device());
  auto q = apply_rope(qkv.q, query_angles, W);
  auto k = apply_rope(keys, key_angles, 0);
  // Absolute indices: query i is token start + i, key j is token start - W + j. Keys before the
  // start of the sequence are the cache's zero initialisation and stay hidden.
  const auto v = values.to(q.scalar_type());
  const bool fused = kernel == AttentionKernel::kFused && fused_attention_enabled();
  torch::Tensor out;
  if (!fused && step_score_elements(x.size(0), q.size(2), n, W) > piecewise_budget().attention_scores)
    out = piecewise_attention(q, k, v, start_position, start_position - W, W, 0);
  else
    out = masked_attention(
        q, k, v,
        visibility_mask(start_position, start_position + n, start_position - W, start_position + n, W, 0, x.device()),
        kernel);
  cache = KvCache{keys.slice(1, n, W + n), values.slice(1, n, W + n)};
  return output_projection(cfg, w, out);
}

WindowCache window_cache_at(const KvCache& last, int64_t position, int64_t period, const RopeTable& rope) {
  const int64_t B = last.k.size(0), W = last.k.size(1), H = last.k.size(2), d = last.k.size(3);
  WindowCache c;
  c.window = W;
  c.period = period;
  c.origin = position / period * period - W;
  c.length = position - c.origin;
  // Slots before `first` hold positions no later query sees, and the slots after the last W are
  // written before they are read: neither is ever initialised.
  const int64_t first = c.length - W;
  auto opts = last.k.options();
  c.k = torch::empty({B, H, W + period, d}, opts);
  c.k_rot = torch::empty({B, H, W + period, d}, opts);
  c.v = torch::empty({B, H, W + period, d}, last.v.options());
  torch::NoGradGuard no_grad;
  c.k.slice(2, first, c.length).copy_(last.k.transpose(1, 2));
  c.k_rot.slice(2, first, c.length).copy_(apply_rope(last.k, rope, first).transpose(1, 2));
  c.v.slice(2, first, c.length).copy_(last.v.transpose(1, 2));
  return c;
}

KvCache window_cache_view(const WindowCache& cache) {
  const int64_t first = cache.length - cache.window;
  return KvCache{cache.k.slice(2, first, cache.length).transpose(1, 2),
                 cache.v.slice(2, first, cache.length).transpose(1, 2)};
}

torch::Tensor attention_step_window(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x,
                                    WindowCache& cache, int64_t start_position, const RopeTable& rope) {
  const int64_t n = x.size(1), W = cache.window, S = cache.period;
  if (start_position != cache.origin + cache.length || start_position / S != (start_position + n - 1) / S)
    throw std::logic_error("attention_step_window: a read of " + std::to_string(n) + " tokens at position " +
                           std::to_string(start_position) + " against a cache at " +
                           std::to_string(cache.origin + cache.length) + " with period " + std::to_string(S));
  if (cache.origin != start_position / S * S - W)  // the next period: re-base
    cache = window_cache_at(window_cache_view(cache), start_position, S, rope);
  auto qkv = project_qkv(cfg, w, x);
  const int64_t L = cache.length;  // slot of the first token read
  const auto new_k = qkv.k.to(cache.k.scalar_type());
  auto q = apply_rope(qkv.q, rope, L);
  {
    // The cache is state, not part of any graph (decoding never trains through it).
    torch::NoGradGuard no_grad;
    cache.k.slice(2, L, L + n).copy_(new_k.transpose(1, 2));
    cache.k_rot.slice(2, L, L + n).copy_(apply_rope(new_k, rope, L).transpose(1, 2));
    cache.v.slice(2, L, L + n).copy_(qkv.v.transpose(1, 2));
  }
  cache.length = L + n;
  // Keys the first token sees: the W - 1 before it (none before position 0) and the tokens read.
  const int64_t first = std::max(L - W + 1, -cache.origin);
  const auto k = cache.k_rot.slice(2, first, L + n).to(q.scalar_type());
  const auto v = cache.v.slice(2, first, L + n).to(q.scalar_type());
  // One token sees every key from `first` on: no mask (the fused kernels and the one-query path
  // run fastest without one). Slot indices are positions shifted by the origin, so the window's
  // visibility holds in slots.
  const auto mask = n == 1 ? torch::Tensor() : visibility_mask(L, L + n, first, L + n, W, 0, x.device());
  return output_projection(cfg, w,
                           masked_attention(q, k.transpose(1, 2), v.transpose(1, 2), mask, AttentionKernel::kFused));
}

GrowingKvCache empty_growing_kv_cache(const ModelConfig& cfg, int64_t batch, torch::ScalarType dtype,
                                      torch::Device device, int64_t capacity) {
  const int64_t H = cfg.num_attention_heads, d = cfg.hidden_size / H;
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  return GrowingKvCache{torch::zeros({batch, H, capacity, d}, opts), torch::zeros({batch, H, capacity, d}, opts), 0};
}

torch::Tensor attention_step_growing(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x,
                                     GrowingKvCache& cache) {
  const int64_t n = x.size(1), start = cache.length, end = start + n;
  auto qkv = project_qkv(cfg, w, x);
  const auto rope = attention_rope_table(cfg, start, end, accumulation_dtype(qkv.q), x.device());
  auto q = apply_rope(qkv.q, rope, start);
  auto k = apply_rope(qkv.k, rope, start);
  if (end > cache.k.size(2)) {
    // Doubling keeps the total copying linear in the context (amortised O(1) per token).
    const int64_t capacity = std::max<int64_t>(end, 2 * cache.k.size(2));
    auto grow = [&](const torch::Tensor& old) {
      auto sizes = old.sizes().vec();
      sizes[2] = capacity;
      auto bigger = torch::zeros(sizes, old.options());
      bigger.slice(2, 0, start).copy_(old.slice(2, 0, start));
      return bigger;
    };
    cache.k = grow(cache.k);
    cache.v = grow(cache.v);
  }
  // The cache is state, not part of any graph: decoding a full-attention model never trains.
  {
    torch::NoGradGuard no_grad;
    cache.k.slice(2, start, end).copy_(k.to(cache.k.scalar_type()).transpose(1, 2));
    cache.v.slice(2, start, end).copy_(qkv.v.to(cache.v.scalar_type()).transpose(1, 2));
  }
  cache.length = end;
  auto keys = cache.k.slice(2, 0, end).to(q.scalar_type());  // [B, H, T, d]
  auto values = cache.v.slice(2, 0, end).to(q.scalar_type());
  // One new token sees every key: no mask (the fused kernels run fastest without one).
  torch::Tensor mask;
  if (n > 1) mask = positions(start, end, x.device()).unsqueeze(1) >= positions(0, end, x.device()).unsqueeze(0);
  return output_projection(
      cfg, w, masked_attention(q, keys.transpose(1, 2), values.transpose(1, 2), mask, AttentionKernel::kFused));
}

}  // namespace ttt

// Multi-head attention with QK-norm (before RoPE) and interleaved RoPE, in the two forms the
// model needs:
//  - attention_full_sequence: the whole sequence at once (prefix blocks, baselines), causal and
//    optionally limited to a sliding window; processed in query blocks so that sliding-window
//    attention never materialises a T x T matrix (memory O(T * W)).
//  - attention_chunk: one chunk of b tokens against a cache of the previous W keys/values (suffix
//    blocks of the inner loop, decoding). The cache holds keys after QK-norm and before RoPE; RoPE
//    is applied at local positions, which gives the same scores as absolute ones.
// Shape legend: B batch, T time, b chunk, W window, H heads, d head dim, D = H * d.
#pragma once

#include <torch/torch.h>

#include "config/config.h"

namespace ttt {

struct AttentionWeights {
  torch::Tensor wq, wk, wv, wo;  // [D, D] (or [B, D, D] as fast weights)
  torch::Tensor q_norm, k_norm;  // [d]
};

struct KvCache {
  torch::Tensor k;  // [B, W, H, d], QK-normed, no RoPE
  torch::Tensor v;  // [B, W, H, d]
};

KvCache empty_kv_cache(const ModelConfig& cfg, int64_t batch, torch::ScalarType dtype, torch::Device device);

// x [B, T, D] -> [B, T, D] (after the output projection). window <= 0: full causal attention.
// segment > 0 restricts attention to aligned segments of that many tokens (the reference's
// chunk-local self_attention when mini_batch_size < seq_length in pretrain mode).
torch::Tensor attention_full_sequence(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x,
                                      int64_t window, int64_t segment = 0);

// x [B, b, D] for chunk number `chunk_index` (the chunk's first token is at chunk_index * b) ->
// [B, b, D]; `cache` is replaced by the last W keys/values.
torch::Tensor attention_chunk(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x,
                              KvCache& cache, int64_t chunk_index);

// q [B, Tq, H, d], k/v [B, Tk, H, d], mask [Tq, Tk] (true = attend) -> [B, Tq, H, d].
torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask);

}  // namespace ttt

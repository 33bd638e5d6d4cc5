// Multi-head attention with QK-norm (before RoPE) and interleaved RoPE, in the forms the model
// needs:
//  - attention_full_sequence: the whole sequence at once (prefix blocks, baselines), causal and
//    optionally limited to a sliding window; processed in query blocks so that sliding-window
//    attention never materialises a T x T matrix (memory O(T * W)).
//  - attention_step: n tokens at any absolute position against a cache of the W keys/values before
//    them: the suffix blocks' chunks in the inner loop (training, evaluation, decoding's inner
//    steps). The cache holds keys after QK-norm and before RoPE; RoPE is applied at local
//    positions, which gives the same scores as absolute ones.
//  - attention_step_window: the same against decoding's window cache (WindowCache), which keeps
//    its keys rotated so that a decoded token rotates only its own (prefill and decoding of
//    sliding-window models, the prefix blocks of TTT-E2E, and the suffix blocks' reads of a chunk
//    whose targets are not known yet).
//  - attention_step_growing: full causal attention against a cache of every earlier position
//    (decoding full-attention models).
// Shape legend: B batch, T time, b chunk, W window, H heads, d head dim, D = H * d.
#pragma once

#include <torch/torch.h>

#include "config/config.h"
#include "model/layers.h"

namespace ttt {

// How softmax(q k^T / sqrt(d)) v is computed.
enum class AttentionKernel {
  // LibTorch's scaled_dot_product_attention where it has one (2.x: flash and memory-efficient
  // kernels on CUDA, fused ones on the CPU), else kMath. Its gradient cannot be differentiated
  // again, so it serves every pass but the inner steps of meta-learning. One query against every
  // key (no mask) without a graph on the CPU: single_query_attention.
  kFused,
  // matmul, softmax in float32, matmul: twice differentiable, for the gradients of inner
  // gradients that meta-learning takes.
  kMath,
};

struct AttentionWeights {
  torch::Tensor wq, wk, wv, wo;  // [D, D] (or [B, D, D] as fast weights)
  torch::Tensor q_norm, k_norm;  // [d]
};

struct KvCache {
  torch::Tensor k;  // [B, W, H, d], QK-normed, no RoPE
  torch::Tensor v;  // [B, W, H, d]
};

// The RoPE angles of positions [begin, end) for this model's heads.
RopeTable attention_rope_table(const ModelConfig& cfg, int64_t begin, int64_t end, torch::ScalarType acc,
                               torch::Device device);

KvCache empty_kv_cache(const ModelConfig& cfg, int64_t batch, torch::ScalarType dtype, torch::Device device);

// The query blocks attention_full_sequence scores one at a time: queries [begin, end) against the
// keys [first_key, end). With a window, a block of W/4 queries (at least 64) sees at most
// W + W/4 - 1 keys, so the scores hold 1.25x the useful work (2x with blocks of W) and never a
// T x T matrix; without one, blocks of up to 1024 queries see every earlier key. `segment` > 0
// starts each block's keys at its segment.
struct QueryBlock {
  int64_t begin, end, first_key;
};
std::vector<QueryBlock> full_sequence_query_blocks(int64_t T, int64_t window, int64_t segment);

// The score elements (B x H x queries x keys their query blocks see) of one attention call over a
// whole sequence, and of one over n tokens against a window of W cached keys. A call that exceeds
// piecewise_budget().attention_scores runs as a piecewise op (model/piecewise_recompute.h) in
// blocks of at most piecewise_budget().piece scores: it keeps q, k and v instead of its
// probabilities, and recomputes them one block of queries at a time in the backward pass, as flash
// attention does. Without a gradient it runs in the same blocks, so evaluation and training read
// the same values. Calls through the fused kernels never do (they keep no scores either).
int64_t full_sequence_score_elements(int64_t batch, int64_t heads, int64_t T, int64_t window, int64_t segment);
int64_t step_score_elements(int64_t batch, int64_t heads, int64_t n, int64_t window);

// x [B, T, D] -> [B, T, D] (after the output projection). window <= 0: full causal attention.
// segment > 0 restricts attention to aligned segments of that many tokens (the reference's
// chunk-local self_attention when mini_batch_size < seq_length in pretrain mode). Only first
// derivatives are ever taken through it, so it runs the fused kernel where there is one: full
// attention and aligned segments in one causal call each (the flash kernel: no T x T matrix
// either), a window in the query blocks above.
torch::Tensor attention_full_sequence(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x,
                                      int64_t window, int64_t segment = 0);

// x [B, n, D] for the tokens at absolute positions start .. start + n - 1 -> [B, n, D]. `cache`
// holds the keys/values of the W positions start - W .. start - 1 (positions < 0 are hidden) and
// is replaced by those of the last W positions start + n - W .. start + n - 1. `rope`, when it
// covers the local positions 0 .. W + n - 1, spares recomputing the rotation angles.
torch::Tensor attention_step(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x, KvCache& cache,
                             int64_t start_position, AttentionKernel kernel, const RopeTable* rope = nullptr);

// Decoding's sliding-window cache. attention_step rotates the whole window at every call (keys
// at local positions 0 .. W + n - 1), which a decoded token cannot afford: O(W) copies and
// rotations per token. This cache holds the keys of positions origin .. origin + length - 1 in
// slots 0 .. length - 1, both as they are (QK-normed) and rotated at their slot index, so a read
// rotates only its own tokens' keys. The slots cover one period of S positions (reads never cross
// a multiple of S) after the W positions before it: origin = floor(p / S) * S - W for a read at
// p. The first read of the next period re-bases: the last W keys move to the front of new storage
// and rotate again (once per S tokens). Because the origin depends only on the position and S, a
// cache rebuilt from its last W keys with the same S (window_cache_at: a saved state, whose S is
// the model's default segment) holds the same bits in every slot a later query sees.
// Head-major, so that each head's keys are one contiguous matrix (decoding multiplies it with a
// vector: single_query_attention).
struct WindowCache {
  torch::Tensor k;      // [B, H, W + S, d], QK-normed, no RoPE
  torch::Tensor k_rot;  // [B, H, W + S, d], the same rotated at the slot index
  torch::Tensor v;      // [B, H, W + S, d]
  int64_t origin = 0;   // absolute position of slot 0
  int64_t length = 0;   // slots filled: the next token is at origin + length
  int64_t window = 0;   // W
  int64_t period = 0;   // S
};

// A window cache at `position` (>= 0) whose last W positions hold `last` ([B, W, H, d], e.g.
// empty_kv_cache's zeros at position 0). `rope` covers the local positions 0 .. W + S - 1.
WindowCache window_cache_at(const KvCache& last, int64_t position, int64_t period, const RopeTable& rope);

// The keys/values of the cache's last W positions as a KvCache ([B, W, H, d] views, no copy).
// Decoding never writes those slots again (only later slots, and a re-base writes new storage), so
// the view is a snapshot.
KvCache window_cache_view(const WindowCache& cache);

// attention_step against a window cache: x [B, n, D] at positions start .. start + n - 1, where
// start is the cache's next position and the read stays within one period. `rope` covers the
// local positions 0 .. W + S - 1. The same attention as attention_step, up to float rounding.
torch::Tensor attention_step_window(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x,
                                    WindowCache& cache, int64_t start_position, const RopeTable& rope);

// Full causal attention's decoding cache. Keys are stored after QK-norm AND RoPE at absolute
// positions: full attention never re-bases positions, so rotating each key once spares rotating
// the whole cache at every token. Storage grows by doubling; `length` positions are valid.
// Head-major, as WindowCache.
struct GrowingKvCache {
  torch::Tensor k;  // [B, H, capacity, d], QK-normed, RoPE applied
  torch::Tensor v;  // [B, H, capacity, d]
  int64_t length = 0;
};

GrowingKvCache empty_growing_kv_cache(const ModelConfig& cfg, int64_t batch, torch::ScalarType dtype,
                                      torch::Device device, int64_t capacity = 256);

// x [B, n, D] for positions cache.length .. cache.length + n - 1 -> [B, n, D]; appends their keys
// and values to the cache.
torch::Tensor attention_step_growing(const ModelConfig& cfg, const AttentionWeights& w, const torch::Tensor& x,
                                     GrowingKvCache& cache);

// q [B, Tq, H, d], k/v [B, Tk, H, d], mask [Tq, Tk] (true = attend; undefined: every key) ->
// [B, Tq, H, d].
torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask, AttentionKernel kernel);

// Decoding one token on the CPU (float32/float64, no graph): q [B, 1, H, d] against every key of
// k/v [B, H, T, d] -> [B, 1, H, d], two matrix-vector products per head. A batched matrix product
// with one query row packs every head's keys first, which costs more than the product (OpenBLAS,
// 1 thread: 5.7 vs 2.6 ms for 12 heads of 8192 keys). masked_attention's kFused picks it.
torch::Tensor single_query_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

}  // namespace ttt

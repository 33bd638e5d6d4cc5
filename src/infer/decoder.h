// Incremental inference: reading tokens into a decoding state, one token (decoding) or many at a
// time (prefill), with the same result as running the model over the whole sequence at once.
//
//  - full attention (`self_attention`): every block keeps a growing KV cache;
//  - sliding window (`SWA`): every block keeps the keys/values of the last W positions only, so
//    the cost per token and the memory stay O(W) at any context length;
//  - TTT layers (`ttt_linear`, `ttt_mlp`, ...): every block keeps its recurrent state (the inner
//    weights, their accumulated gradients in the current mini-batch, the convolutions' last
//    inputs), so the cost per token and the memory are constant at any context length;
//  - TTT-E2E (TttOptions::enabled): sliding-window caches as above for the prefix blocks, and the
//    suffix blocks read through the inner loop's fast state (inner_loop.h). Chunk c (tokens
//    c*b .. c*b+b-1) is learned from as soon as its targets are known, i.e. once token (c+1)*b has
//    been read or sampled: chunk_step, exactly as evaluation runs it. Tokens of a chunk whose
//    targets are not all known yet are read with the current fast weights and kept pending (their
//    prefix-block outputs, ids, and the suffix caches at the chunk's start); the step then
//    recomputes the chunk from those, so a prompt of any length and the tokens generated after it
//    form the same chunks as one long sequence would.
// Shape legend: B batch, n tokens read, D hidden, V vocabulary, W window, b mini-batch (chunk).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "config/config.h"
#include "model/attention.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "ttt/inner_loop.h"

namespace ttt {

// Copying a DecodeState copies tensor handles: both copies share their cache storage, which
// decoding writes in place (window caches write the slots after their last, the growing cache
// after its length, and `seen`). One copy may be read from again while the other advances only
// if the one read from is not advanced too (latency_bench decodes repeatedly from one prefilled
// state without doubling its memory); fork_decoding makes copies that advance independently.
struct DecodeState {
  int64_t position = 0;                     // tokens read so far (the next one sits at this position)
  int64_t segment = 0;                      // tokens read at once when many are read (prefill_segment)
  std::vector<WindowCache> window_caches;   // sliding-window models: per block with stored weights
                                            // (every block, or the prefix blocks under test-time
                                            // training), with a period of `segment` tokens
  std::vector<GrowingKvCache> full_caches;  // full-attention models: per block
  std::vector<TttBlockState> ttt_blocks;    // TTT-layer models: per block, fixed in size
  FastState fast;                           // test-time training: fast weights and suffix caches
  // The chunk being read whose targets are not all known yet (test-time training only).
  std::vector<KvCache> chunk_start_caches;  // suffix blocks' caches at the chunk's first token
  std::vector<WindowCache> suffix_windows;  // the suffix blocks' reads of it (period b; derived:
                                            // rebuilt from fast.caches when empty)
  torch::Tensor pending_hidden;             // [B, n, D] prefix-block outputs of its tokens read so far
  torch::Tensor pending_ids;                // [B, n] their ids
  torch::Tensor seen;                       // [B, V] bool: tokens read so far (repetition penalty)
  torch::Tensor last_logits;                // [B, V] float32: next-token logits after the last token
  RopeTable rope;                           // rotation angles of the windows' local positions
                                            // 0 .. W + segment - 1 (derived)
};

// Blocks before this index read with their stored weights, the others (the suffix blocks, under
// test-time training) through the fast state.
int64_t first_fast_block(const ModelConfig& cfg, const TttOptions& ttt);

// Tokens read at once when many are read (bounds the memory of a long prefill); start_decoding
// rounds it up to whole chunks under test-time training.
int64_t prefill_segment(const ModelConfig& cfg);

// An empty state (nothing read) on the weights' device. `segment` > 0 replaces prefill_segment()
// (rounded up to whole chunks under test-time training).
DecodeState start_decoding(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w, int64_t batch = 1,
                           int64_t segment = 0);

// A copy of `state` that can advance independently of it, in any order (every tensor copied;
// the RoPE table, never written, is shared): one prompt's prefix read once, then several
// continuations read from it. Reading from the fork gives the bits reading from `state` would.
DecodeState fork_decoding(const DecodeState& state);

// Reads ids [B, n] (n >= 1) at positions state.position .. + n - 1 and updates the state (and, at
// chunk boundaries with known targets, the fast weights). Returns the logits of every token read
// [B, n, V] when `all_logits`, else an undefined tensor (the last ones are in state.last_logits).
torch::Tensor read_tokens(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w, DecodeState& state,
                          const torch::Tensor& ids, bool all_logits = false);

}  // namespace ttt

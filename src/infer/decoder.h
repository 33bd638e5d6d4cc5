// Incremental inference: reading tokens into a decoding state, one token (decoding) or many at a
// time (prefill), with the same result as running the model over the whole sequence at once.
//
//  - full attention (`self_attention`): every block keeps a growing KV cache;
//  - sliding window (`SWA`): every block keeps the keys/values of the last W positions only, so
//    the cost per token and the memory stay O(W) at any context length;
//  - TTT-E2E (train_mode meta, test-time training on): sliding-window caches as above, and the
//    suffix blocks run with the fast weights. Chunk c (tokens c*b .. c*b+b-1) is learned from as
//    soon as its targets are known, i.e. once token (c+1)*b has been read or sampled: one clipped
//    SGD step on the chunk's next-token loss, exactly as the evaluation path (meta_loss) does.
//    Tokens of a chunk whose targets are not all known yet are read through the caches with the
//    current fast weights and kept pending (their prefix-block outputs, ids, and the suffix caches
//    at the chunk's start); the step then recomputes the chunk from those, so a prompt of any
//    length and the tokens generated after it form the same chunks as one long sequence would.
// Shape legend: B batch, n tokens read, D hidden, V vocabulary, W window, b mini-batch (chunk).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "config/config.h"
#include "model/attention.h"
#include "model/weights.h"
#include "ttt/fast_state.h"

namespace ttt {

// What the decoding functions read besides the weights and the state.
struct DecodeModel {
  ModelConfig cfg;
  bool full_attention = false;      // self_attention: growing caches; else sliding-window caches
  bool test_time_training = false;  // meta model with inner steps on (false for pretrain models, --no-ttt)
  InnerParams inner;                // the fast weights (meta models)
  InnerStepOptions step;            // evaluation's inner step: full inner lr, clip, no create_graph
  torch::ScalarType state_dtype = torch::kFloat32;
  int64_t prefill_segment = 0;      // tokens per segment when many are read at once (bounds memory)
};

// From a resolved configuration. `test_time_training` false runs a meta model without inner
// steps (its prime MLPs keep their trained initial weights), as --no-ttt does.
DecodeModel decode_model(const Config& config, bool test_time_training = true);

struct DecodeState {
  int64_t position = 0;                    // tokens read so far (the next one sits at this position)
  std::vector<KvCache> window_caches;      // per block, sliding-window models
  std::vector<GrowingKvCache> full_caches; // per block, full-attention models
  std::vector<torch::Tensor> fast_weights; // per inner parameter [B, ...] (test-time training)
  // The chunk being read whose targets are not all known yet (test-time training only).
  std::vector<KvCache> chunk_start_caches; // suffix blocks' caches at the chunk's first token
  torch::Tensor pending_hidden;            // [B, n, D] prefix-block outputs of its tokens read so far
  torch::Tensor pending_ids;               // [B, n] their ids
  torch::Tensor seen;                      // [B, V] bool: tokens read so far (repetition penalty)
  torch::Tensor last_logits;               // [B, V] float32: next-token logits after the last token
  RopeTable rope;                          // rotation angles of the window's local positions (derived)
};

// An empty state (nothing read) on the weights' device.
DecodeState start_decoding(const DecodeModel& model, const ModelWeights& w, int64_t batch = 1);

// Reads ids [B, n] (n >= 1) at positions state.position .. + n - 1 and updates the state (and, at
// chunk boundaries with known targets, the fast weights). Returns the logits of every token read
// [B, n, V] when `all_logits`, else an undefined tensor (the last ones are in state.last_logits).
torch::Tensor read_tokens(const DecodeModel& model, const ModelWeights& w, DecodeState& state,
                          const torch::Tensor& ids, bool all_logits = false);

}  // namespace ttt

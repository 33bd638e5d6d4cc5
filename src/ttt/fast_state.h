// What test-time training changes while it reads a sequence: the fast weights of the suffix
// blocks (the parameters selected by training.spec_inner, one copy per sequence) and the suffix
// blocks' sliding-window KV caches. Training, evaluation, prefill and decoding all advance it
// with the same two functions: suffix_chunk_logits (read a chunk) and take_inner_step.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "model/attention.h"
#include "model/weights.h"

namespace ttt {

// The inner parameters: suffix-block parameters selected by spec_inner on the split-view names.
struct InnerParams {
  std::vector<std::string> names;        // canonical parameter names
  std::vector<int64_t> suffix_block;     // j in 0..suffix_len-1
  std::vector<std::string> local_names;  // name relative to the block ("feed_forward_prime.w1.weight")
};

// Throws ConfigError when a spec matches nothing or selects a parameter outside the suffix blocks.
InnerParams select_inner_params(const ModelConfig& cfg, const std::vector<std::string>& spec_inner);

struct FastState {
  std::vector<torch::Tensor> theta;  // per inner parameter: [B, ...shape]
  std::vector<KvCache> caches;       // per suffix block
  int64_t next_chunk = 0;            // index of the next chunk to read
};

// Fast weights start as the (outer) initial weights, broadcast to every sequence. With
// `through_outer` they stay differentiable with respect to the outer weights (meta-learning);
// otherwise they are fresh leaves (evaluation, inference). Caches start empty (zeros, hidden by
// the mask).
FastState init_fast_state(const ModelConfig& cfg, const ModelWeights& w, const InnerParams& inner, int64_t batch,
                          torch::ScalarType state_dtype, bool through_outer);

// Runs the suffix blocks and the head on one chunk of prefix output [B, b, D] with the current
// fast weights; advances the caches and next_chunk. Returns logits [B, b, V].
torch::Tensor suffix_chunk_logits(const ModelConfig& cfg, const ModelWeights& w, const InnerParams& inner,
                                  FastState& state, const torch::Tensor& prefix_chunk);

struct InnerStepOptions {
  double lr = 1.0;            // effective inner learning rate
  double clip = 0.0;          // global-norm clip per sequence (0: none)
  bool create_graph = false;  // keep the step differentiable (meta-learning)
};

// theta <- theta - lr * clip(d loss_per_sequence.sum() / d theta). Without create_graph the new
// fast weights and caches are cut from the graph, so memory stays constant over a long context.
void take_inner_step(FastState& state, const torch::Tensor& loss_per_sequence, const InnerStepOptions& options);

}  // namespace ttt

// The decoder as functions of its weights. Every sublayer is
//   h = h + post_norm( sublayer( pre_norm(h) ) )
// in the order: attention, [prime MLP in suffix blocks of a prime model], MLP.
// Shape legend: B batch, T time, b chunk, D hidden, V vocabulary.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "config/config.h"
#include "model/attention.h"
#include "model/ttt_layer.h"
#include "model/weights.h"

namespace ttt {

// ids [B, T] (int64) -> [B, T, D] in the compute dtype (float64 weights stay float64).
torch::Tensor embed(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids);

// How a block's sequence-modelling layer sees the sequence when it runs over all of it at once.
struct FullSequenceAttention {
  int64_t window = 0;   // <= 0: full causal
  int64_t segment = 0;  // > 0: attention restricted to aligned segments (chunk-local)
  // TTT-layer blocks: the inner-lr warm-up's multiplier at this training step (1 otherwise).
  double ttt_lr_mult = 1.0;
};
FullSequenceAttention full_sequence_attention(const ModelConfig& cfg, int64_t seq_len, double ttt_lr_mult = 1.0);

// TTT-layer models (model.seq_modeling_block ttt_*). A block is
//   [pre_conv: h = h + causal_conv(RMSNorm(h))],  h = h + TTT(RMSNorm(h)),  h = h + SwiGLU(RMSNorm(h))
// (with model.post_norm, a post-norm after the TTT layer and the MLP as in attention blocks).
// Its recurrent state: the pre-convolution's last inputs and the TTT layer's state, fixed in size.
struct TttBlockState {
  torch::Tensor pre_conv_history;  // [B, K - 1, D] (model.pre_conv)
  TttLayerState layer;
};
TttLayerOptions ttt_layer_options(const ModelConfig& cfg, double lr_mult = 1.0);
// The layer's weights of a block (wq, wk, wv, wo are stored with the attention weights).
TttLayerWeights ttt_layer_weights(const BlockWeights& w);
TttBlockState ttt_block_initial_state(const ModelConfig& cfg, const BlockWeights& w, int64_t batch);
// One TTT-layer block over the next n tokens h [B, n, D] from `state`, which it advances: the
// whole sequence, a prefill segment or one decoded token alike.
torch::Tensor ttt_block_forward(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h,
                                TttBlockState& state, double lr_mult = 1.0);

// One block over the whole sequence: h [B, T, D] -> [B, T, D].
torch::Tensor block_forward(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h,
                            const FullSequenceAttention& attn);

// One block over the tokens at absolute positions start .. start + n - 1 (h [B, n, D]) with a
// sliding-window KV cache of the W positions before them (replaced in place): decoding and prefill.
// `rope`: precomputed rotation angles (see attention_step).
torch::Tensor block_forward_step(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h, KvCache& cache,
                                 int64_t start_position, AttentionKernel kernel, const RopeTable* rope = nullptr);

// The same with decoding's window cache (attention_step_window; `rope` covers its local positions).
torch::Tensor block_forward_window(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h,
                                   WindowCache& cache, int64_t start_position, const RopeTable& rope);

// One block over the next n tokens with full causal attention against a growing cache.
torch::Tensor block_forward_step_growing(const ModelConfig& cfg, const BlockWeights& w, const torch::Tensor& h,
                                         GrowingKvCache& cache);

// Blocks [begin, end) over the whole sequence at once: h [B, T, D] -> [B, T, D].
// `ttt_lr_mult`: see FullSequenceAttention.
torch::Tensor blocks_forward(const ModelConfig& cfg, const ModelWeights& w, torch::Tensor h, int64_t begin, int64_t end,
                             double ttt_lr_mult = 1.0);

// Recomputation block by block (the reference's `nothing_saveable` block policies): a forward
// pass without a graph keeps only each block's input; the backward pass recomputes one block at a
// time from its input, in reverse, so it holds one block's graph.
// The embedding and blocks [0, end) without a graph: returns their output and sets `inputs` to
// each block's input.
torch::Tensor forward_keeping_block_inputs(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids,
                                           int64_t end, std::vector<torch::Tensor>& inputs, double ttt_lr_mult = 1.0);
// Given d_output, the gradient of the output of the embedding and blocks [0, inputs.size()),
// accumulates into .grad the gradient of every weight of theirs that trains; stops below the
// lowest one. Releases the inputs as it goes.
void backward_recomputing_blocks(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids,
                                 std::vector<torch::Tensor>& inputs, const torch::Tensor& d_output,
                                 double ttt_lr_mult = 1.0);

// Embedding and the prefix blocks (the blocks test-time training never changes) over the whole
// sequence: ids [B, T] -> [B, T, D].
torch::Tensor prefix_forward(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids);

// Logits of the whole model run over the whole sequence at once, no test-time training: [B, T, V].
torch::Tensor full_sequence_logits(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids);

// Final RMSNorm and the output head (tied: h @ wte^T): [B, T, D] -> logits [B, T, V].
torch::Tensor lm_head(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& h);
// The output head's weight as a [D, V] matrix in the compute dtype (wte^T when tied).
torch::Tensor lm_head_weight(const ModelConfig& cfg, const ModelWeights& w, torch::ScalarType compute);

// Per-token negative log-likelihood in float32 (float64 logits stay float64): [B, T].
torch::Tensor token_nll(const torch::Tensor& logits, const torch::Tensor& targets);

// The reference's cross-entropy of a chunk: sum of NLL over valid tokens / max(#valid, 1e-10),
// per sequence: nll [B, T], mask [B, T] -> [B].
torch::Tensor masked_mean_nll(const torch::Tensor& nll, const torch::Tensor& mask);

}  // namespace ttt

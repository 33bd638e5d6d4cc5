// The TTT-Linear and TTT-MLP sequence-modelling layers ("Learning to (Learn at Test Time): RNNs
// with Expressive Hidden States"; official code test-time-training/ttt-lm-jax, ttt_layer.py, and
// ttt-lm-pytorch, ttt.py), as functions of their weights.
//
// Per head (d = D / H), the hidden state is an inner model g: TTT-Linear z W1 + b1 (d -> d),
// TTT-MLP gelu_tanh(z W1 + b1) W2 + b2 (d -> 4d -> d). Each token t contributes the gradient of
//   l_t(W) = 1/2 || LN(g(k_t; W)) - (v_t - k_t) ||^2          (LN: per-head LayerNorm, outer scale/bias)
// taken at the weights of its mini-batch's start (b = mini_batch_size tokens, aligned to position 0).
// Token i of a mini-batch reads with W_i = W_0 - tau_i * sum_{j <= i} a'_j grad l_j(W_0), where
//   a'_j = base_lr * lr_mult * sigmoid(x_j . g_h + c_h) / d      (token-dependent, per head)
//   tau_i = max(0, 1 / (i + 1) + learnable_token_idx[i])          (position in the mini-batch)
// and outputs z_i = q_i + LN(g(q_i; W_i)); the next mini-batch starts from W_{b-1}.
//
// One engine, `ttt_inner_chunk`, computes any run of tokens inside one mini-batch from the state
// (W_0, the accumulated a'-weighted gradients of the mini-batch's earlier tokens, the position in
// it) in the dual form: matmuls over the run, no per-token weights. A whole sequence (training,
// evaluation, prefill) runs it over aligned mini-batches; decoding runs it one token at a time,
// which is the primal (recurrent) form with a fixed-size state.
//
// Backbones (the official `seq_modeling_block` variants): the Transformer backbone projects q, k,
// v separately; the Mamba backbone shares one projection for q and k, followed by a causal
// depthwise convolution each, and gates the output with gelu_tanh(x wg). Both apply RoPE at the
// position inside the mini-batch, a LayerNorm over D after the heads, and wo.
// Shape legend: B batch, N tokens, D hidden, H heads, d head dim, b mini-batch, K conv width.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "config/config.h"

namespace ttt {

enum class TttInnerModel { kLinear, kMlp };

struct TttLayerOptions {
  TttInnerModel inner = TttInnerModel::kLinear;
  bool mamba_backbone = false;  // shared q/k projection + causal convs, output gate
  int64_t num_heads = 12;
  int64_t mini_batch_size = 16;
  double base_lr = 1.0;  // ttt_base_lr
  // The inner-lr warm-up's multiplier at this step (1 outside training's warm-up); the official
  // code rounds it to bfloat16, which the caller does.
  double lr_mult = 1.0;
  double rope_theta = 10000.0;
  RopePrecision rope_precision = RopePrecision::kFloat32;
  double norm_eps = 1e-6;  // the per-head LayerNorm and the post-norm
  // When recording a graph: runs of this many whole mini-batches keep only their inputs and are
  // recomputed in the backward pass (remat_mini_batch_group_size; 0 keeps the whole graph).
  int64_t remat_group = 0;
};

// One layer's weights. Matrices [in, out]; inner weights per head [H, in, out].
struct TttLayerWeights {
  torch::Tensor wq, wk, wv, wo;                                          // [D, D]; wk: Transformer backbone only
  torch::Tensor wg;                                                      // [D, D]: Mamba backbone only
  torch::Tensor conv_q_weight, conv_q_bias, conv_k_weight, conv_k_bias;  // [K, D], [D]: Mamba only
  torch::Tensor lr_gate_weight;                                          // [H, D]
  torch::Tensor lr_gate_bias;                                            // [H]
  torch::Tensor learnable_token_idx;                                     // [b]
  torch::Tensor ttt_norm_weight, ttt_norm_bias;                          // [H, d]
  torch::Tensor post_norm_weight, post_norm_bias;                        // [D]
  torch::Tensor w1, b1;  // [H, d, d'] and [H, 1, d'] (d' = d for Linear, 4d for MLP)
  torch::Tensor w2, b2;  // MLP only: [H, 4d, d], [H, 1, d]
};

// The recurrent state of one layer for B sequences: the inner weights at the current mini-batch's
// start, the a'-weighted gradient sums of its tokens so far, the convolutions' last inputs and the
// number of tokens consumed. Fixed size at any context length.
struct TttLayerState {
  torch::Tensor w1, b1, w2, b2;                  // [B, H, ...]
  torch::Tensor acc_w1, acc_b1, acc_w2, acc_b2;  // same shapes; zero at a mini-batch boundary
  torch::Tensor conv_q_history, conv_k_history;  // [B, K - 1, D]: Mamba backbone only
  int64_t position = 0;
};

// The state before the first token: the layer's inner weights for each of `batch` sequences.
TttLayerState ttt_initial_state(const TttLayerOptions& opt, const TttLayerWeights& w, int64_t batch);

// The layer over the next N tokens x [B, N, D] (its normed input) from `state`, which it advances.
// Any N and any starting position: runs inside a mini-batch are computed together.
torch::Tensor ttt_layer_forward(const TttLayerOptions& opt, const TttLayerWeights& w, const torch::Tensor& x,
                                TttLayerState& state);

// Causal depthwise convolution over time: y[t] = bias + sum_j weight[j] * x[t - K + 1 + j], with
// `history` [B, K - 1, D] the inputs before x (zeros at the start), replaced by the last K - 1.
torch::Tensor causal_depthwise_conv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                    torch::Tensor& history);

// The tanh approximation of GELU and the official code's hand-written derivative of it (its
// constants are rounded: 0.79788456 and 0.1070322243), which the TTT-MLP inner gradient uses.
torch::Tensor gelu_tanh(const torch::Tensor& x);
torch::Tensor gelu_tanh_derivative(const torch::Tensor& x);

}  // namespace ttt

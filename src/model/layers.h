// Elementary layers of the Llama-style decoder, as functions of the tensors they use.
// Shape legend: B batch, T time, D hidden, H heads, d head dim, I MLP width.
// A weight may carry a leading batch axis (one copy per sequence: the fast weights of the inner
// loop); every function here broadcasts such a weight over its sequence.
#pragma once

#include <torch/torch.h>

#include "config/config.h"

namespace ttt {

// x @ w with both cast to `compute` (w stored [in, out], or [B, in, out] per sequence).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, DType compute);

// RMSNorm over the last axis with a learnable scale; computed in float32 (or float64 for float64
// input), returned in x's dtype.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& scale, double eps);

// SwiGLU: w2( silu(x w1) * (x w3) ).
torch::Tensor swiglu(const torch::Tensor& x, const torch::Tensor& w1, const torch::Tensor& w2, const torch::Tensor& w3,
                     DType compute);

// Interleaved (complex-pair) rotary embedding: pairs (x[2i], x[2i+1]) of a head rotate by the
// angle pos * theta^(-2i/d). The angles of a range of positions are computed once, with
// `precision` (model.rope_precision: float32 as the reference computes them, or float64), and kept
// as cos/sin in the accumulation dtype (float32; float64 for float64 models), reusable when the
// same positions come back (decoding rotates the window's local positions at every token).
// Both are laid out like x's last dimension, so that a rotation is two products and a sum over
// contiguous memory: x * cos_pairs + swap(x) * sin_pairs, where swap exchanges each pair.
struct RopeTable {
  torch::Tensor cos_pairs;  // [end - begin, d]: cos of pair i's angle at 2i and 2i + 1
  torch::Tensor sin_pairs;  // [end - begin, d]: -sin of pair i's angle at 2i, +sin at 2i + 1
  int64_t begin = 0, end = 0;
  // Whether it holds the positions 0 .. length - 1 in dtype `acc`.
  bool covers(int64_t length, torch::ScalarType acc) const {
    return cos_pairs.defined() && begin == 0 && length <= end && cos_pairs.scalar_type() == acc;
  }
};
RopeTable rope_table(int64_t head_dim, double theta, int64_t begin, int64_t end, torch::ScalarType acc,
                     torch::Device device, RopePrecision precision);

// x [B, T, H, d] holding the tokens at positions first .. first + T - 1 (all inside `table`) ->
// rotated x, computed in the table's dtype and returned in x's.
torch::Tensor apply_rope(const torch::Tensor& x, const RopeTable& table, int64_t first);

// The accumulation dtype of norms, RoPE, softmax and the loss: float32, float64 for float64 input.
torch::ScalarType accumulation_dtype(torch::ScalarType input);
inline torch::ScalarType accumulation_dtype(const torch::Tensor& x) { return accumulation_dtype(x.scalar_type()); }

// Reshapes a per-sequence weight [B, ...rest] to broadcast against x [B, ..., rest]; a shared
// weight is returned as is.
torch::Tensor broadcast_weight(const torch::Tensor& w, const torch::Tensor& x);

// The torch dtype of a configured dtype.
torch::ScalarType scalar_type(DType dtype);

// The dtype matmuls run in: `compute`, except that a float64 model stays float64 (the gradient
// tests run whole models in float64).
torch::ScalarType compute_dtype(const torch::Tensor& x, DType compute);

}  // namespace ttt

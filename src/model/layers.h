// Elementary layers of the Llama-style decoder, as functions of the tensors they use.
// Shape legend: B batch, T time, D hidden, H heads, d head dim, I MLP width.
// A weight may carry a leading batch axis (one copy per sequence: the fast weights of the inner
// loop); every function here broadcasts such a weight over its sequence.
#pragma once

#include <torch/torch.h>

namespace ttt {

// x @ w with both cast to `compute` (w stored [in, out], or [B, in, out] per sequence).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, torch::ScalarType compute);

// RMSNorm over the last axis with a learnable scale; computed in float32 (or float64 for float64
// input), returned in x's dtype.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& scale, double eps);

// SwiGLU: w2( silu(x w1) * (x w3) ).
torch::Tensor swiglu(const torch::Tensor& x, const torch::Tensor& w1, const torch::Tensor& w2,
                     const torch::Tensor& w3, torch::ScalarType compute);

// Interleaved (complex-pair) rotary embedding: pairs (x[2i], x[2i+1]) rotate by pos * theta^(-2i/d).
// x [B, T, H, d]; positions [T] (int64). Computed in float32 (float64 for float64 input).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta);

// Reshapes a per-sequence weight [B, ...rest] to broadcast against x [B, ..., rest]; a shared
// weight is returned as is.
torch::Tensor broadcast_weight(const torch::Tensor& w, const torch::Tensor& x);

torch::ScalarType dtype_from_name(const std::string& name);  // fp32 | bf16 | fp64

}  // namespace ttt

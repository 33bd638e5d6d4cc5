// The next-token NLL of the LM head without the full-vocabulary logits of a whole sequence.
//
// The logits of N tokens are N x V: at V = 128256 and 8K tokens, 4 GiB in fp32, and autograd keeps
// the log-probabilities and their gradient of the same size. Above a budget the head runs in
// slices of tokens. Without a gradient (evaluation) each slice's logits are dropped after use.
// With one, the loss must be a fixed weighted sum of the NLLs (pretraining's chunk means): the
// forward pass then computes each slice's gradients with respect to the head's input and weight
// as well (as a fused linear cross-entropy does), so the backward pass only scales them; it holds
// N x D and D x V, never N x V.
#pragma once

#include <torch/torch.h>

#include "config/config.h"
#include "model/weights.h"

namespace ttt {

// The most logits (tokens x vocabulary) computed at once by head_token_nll: 2^26 (256 MiB in fp32).
inline constexpr int64_t kHeadSliceElements = int64_t{1} << 26;

// NLL of every target: final hidden h [B, n, D], targets [B, n] -> [B, n] (float32, or float64).
// `token_weights` [B, n] is d(loss)/d(nll) of the loss the caller builds from the result; it is
// used (and the backward pass checks that the incoming gradient is a multiple of it) only when
// the head is sliced with a gradient. Up to the budget this is token_nll(lm_head(h), targets).
torch::Tensor head_token_nll(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& h,
                             const torch::Tensor& targets, const torch::Tensor& token_weights,
                             int64_t slice_elements = kHeadSliceElements);

// The same NLL, token_nll(lm_head(h), targets), as a piecewise op (model/piecewise_recompute.h)
// over rows of at most piecewise_budget().piece logits: it keeps h, and its gradient can be
// differentiated again. For the inner loop's loss, whose gradient meta-learning differentiates:
// the autograd graph of full logits would keep several tensors of tokens x vocabulary.
torch::Tensor recomputed_head_token_nll(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& h,
                                        const torch::Tensor& targets);

}  // namespace ttt

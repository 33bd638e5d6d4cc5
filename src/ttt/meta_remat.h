// The meta-learning loss and its outer gradient with recomputation (the reference's
// training.inner_remat_freq = n): the forward pass keeps only the fast state (fast weights and KV
// caches) at the start of every group of n chunks; the backward pass walks the groups in reverse,
// recomputes each group with a differentiable inner loop, and chains the gradients of the fast
// state from group to group. Peak memory holds one group's graph instead of the whole inner
// loop's; the price is one more forward pass (with its inner gradients) of the suffix blocks.
// The prefix blocks are likewise run once without a graph and once more for their backward.
#pragma once

#include "ttt/sequence_loss.h"

namespace ttt {

// Accumulates d(loss * scale)/d(weight) into .grad of every weight that requires grad and returns
// the (detached) loss. Gradients equal those of meta_loss(...).loss.backward() up to float error.
SequenceLoss meta_loss_backward_remat(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch,
                                      const TttOptions& options, int64_t chunks_per_group, double scale);

}  // namespace ttt

// The loss of a training batch together with its outer gradient: the one call the trainer and
// the benchmarks make. Meta mode with training.inner_remat_freq > 0 recomputes groups of that
// many chunks in the backward pass (meta_remat.h); otherwise the whole graph is kept and
// backpropagated once.
#pragma once

#include "ttt/sequence_loss.h"

namespace ttt {

// Accumulates d(loss * scale)/d(weight) into .grad of every weight that requires grad; returns
// the detached loss. `remat_every` is training.inner_remat_freq (0: no recomputation).
SequenceLoss loss_and_backward(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch,
                               const TttOptions& options, int64_t remat_every, double scale);

}  // namespace ttt

// The loss of a batch of sequences in the two training modes of the reference:
//  - pretrain: plain next-token loss over the whole sequence (full-attention and SWA baselines);
//  - meta: TTT-E2E, the inner loop of inner_loop.h.
// In both modes a sequence's loss is the equal-weight mean over its chunks (TTT-layer models: the
// whole sequence is one chunk, as ttt-lm-jax's loss) of
// sum(NLL over valid targets) / #valid targets, and the batch loss is the mean over sequences.
#pragma once

#include <torch/torch.h>

#include "config/config.h"
#include "data/batch.h"
#include "model/head_loss.h"
#include "model/weights.h"
#include "ttt/inner_loop.h"

namespace ttt {

// The whole model over the whole sequence, no test-time training. The LM head runs in slices of
// at most `head_slice_elements` logits (model/head_loss.h). `ttt_lr_mult`: TTT-layer models' inner-lr
// warm-up multiplier (TttOptions::ttt_layer_lr_mult).
SequenceLoss pretrain_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch,
                           int64_t head_slice_elements = kHeadSliceElements, double ttt_lr_mult = 1.0);

// Evaluation: the meta loss (inner steps, no outer graph) when test-time training is enabled,
// else the pretrain loss. Throws ConfigError when a meta sequence is not a whole number of chunks.
SequenceLoss sequence_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& ttt);

// Training: the loss of a batch together with its outer gradient, accumulated as
// d(loss * scale)/d(weight) into .grad of every weight that requires grad; returns the detached
// loss. Meta mode recomputes groups of `remat_every` chunks in the backward pass
// (training.inner_remat_freq; 0 keeps the whole graph and backpropagates it once).
SequenceLoss loss_and_backward(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& ttt,
                               int64_t remat_every, double scale);

}  // namespace ttt

// The loss of a batch of sequences, in the two training modes of the reference:
//  - pretrain: plain next-token loss over the whole sequence (full-attention and SWA baselines);
//  - meta: TTT-E2E. The prefix blocks run once over the whole sequence; then, chunk by chunk
//    (mini_batch_size tokens), the suffix blocks and the head give the chunk's loss with the
//    current fast weights, and one clipped SGD step on that loss updates the fast weights for the
//    next chunk. The outer loss is the mean of the chunk losses; with create_graph the outer
//    gradient flows through every inner step (gradients of gradients).
// In both modes a sequence's loss is the equal-weight mean over its chunks of
// sum(NLL over valid targets) / #valid targets, and the batch loss is the mean over sequences.
#pragma once

#include <torch/torch.h>

#include "config/config.h"
#include "data/batch.h"
#include "model/weights.h"
#include "ttt/fast_state.h"

namespace ttt {

struct TttOptions {
  bool meta = false;  // training.train_mode == "meta"
  InnerParams inner;  // selected by training.spec_inner (meta only)
  InnerStepOptions step;
  torch::ScalarType state_dtype = torch::kFloat32;

  // From the configuration at outer step `outer_step` (inner-lr warm-up). create_graph is left
  // false: the training step turns it on.
  static TttOptions from_config(const Config& config, int64_t outer_step);
};

struct SequenceLoss {
  torch::Tensor loss;          // scalar: mean over the batch
  torch::Tensor per_sequence;  // [B]
  torch::Tensor token_nll;     // [B, T], detached: NLL of every target token by position
};

SequenceLoss sequence_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& options);

SequenceLoss pretrain_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch);
SequenceLoss meta_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& options);

// Logits of the whole model run over the whole sequence at once (no test-time training): [B, T, V].
torch::Tensor full_sequence_logits(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids);

// Embedding and the prefix blocks (full-sequence sliding-window attention): [B, T] -> [B, T, D].
torch::Tensor prefix_forward(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids);

}  // namespace ttt

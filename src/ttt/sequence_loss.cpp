#include "ttt/sequence_loss.h"

#include <algorithm>

#include "model/layers.h"
#include "model/transformer.h"

namespace ttt {
namespace {

// Equal-weight mean over chunks of the per-chunk masked mean NLL: nll, mask [B, T] -> [B].
torch::Tensor chunked_loss(const torch::Tensor& nll, const torch::Tensor& mask, int64_t chunk) {
  const int64_t B = nll.size(0), T = nll.size(1);
  return masked_mean_nll(nll.view({B, T / chunk, chunk}), mask.view({B, T / chunk, chunk})).mean(1);
}

void check_whole_chunks(const ModelConfig& cfg, const Batch& batch) {
  if (batch.input_ids.size(1) % cfg.mini_batch_size != 0)
    throw ConfigError("sequence length " + std::to_string(batch.input_ids.size(1)) +
                      " is not a multiple of model.mini_batch_size " + std::to_string(cfg.mini_batch_size));
}

// The chunk a sequence's loss is averaged over: the TTT-E2E reference's mini-batch (its pretrain
// loss is a mean over chunks), or the whole sequence for TTT-layer models, whose mini-batch is the
// inner loop's and whose reference (ttt-lm-jax) takes one mean over each sequence.
int64_t loss_chunk(const ModelConfig& cfg, int64_t seq_len) {
  return is_ttt_layer(cfg.seq_modeling_block) ? seq_len : std::min(cfg.mini_batch_size, seq_len);
}

// The pretraining loss of the final hidden states [B, T, D] (before the final norm).
SequenceLoss pretrain_loss_of_hidden(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& hidden,
                                     const Batch& batch, int64_t head_slice_elements) {
  const int64_t B = batch.input_ids.size(0), T = batch.input_ids.size(1), chunk = loss_chunk(cfg, T);
  // d(loss)/d(nll) of the loss below: each chunk's mean over its valid targets, then the mean over
  // chunks and sequences.
  auto mask = batch.loss_mask.to(accumulation_dtype(hidden.scalar_type())).view({B, T / chunk, chunk});
  auto token_weights = (mask / mask.sum(-1, /*keepdim=*/true).clamp_min(1e-10) / static_cast<double>(B * (T / chunk)));
  auto nll = head_token_nll(cfg, w, hidden, batch.targets, token_weights.view({B, T}), head_slice_elements);
  auto per_sequence = chunked_loss(nll, batch.loss_mask, chunk);
  return SequenceLoss{per_sequence.mean(), per_sequence, nll.detach()};
}

// Pretraining with model.remat_block=nothing_saveable: the blocks run without a graph, keeping
// their inputs, and are recomputed one at a time in the backward pass.
SequenceLoss pretrain_loss_backward_recomputing(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch,
                                                double scale, double ttt_lr_mult) {
  std::vector<torch::Tensor> inputs;
  auto hidden = forward_keeping_block_inputs(cfg, w, batch.input_ids, cfg.num_hidden_layers, inputs, ttt_lr_mult)
                    .requires_grad_(true);
  auto out = pretrain_loss_of_hidden(cfg, w, hidden, batch, kHeadSliceElements);
  (out.loss * scale).backward();
  backward_recomputing_blocks(cfg, w, batch.input_ids, inputs, hidden.grad(), ttt_lr_mult);
  out.loss = out.loss.detach();
  out.per_sequence = out.per_sequence.detach();
  return out;
}

}  // namespace

SequenceLoss pretrain_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch,
                           int64_t head_slice_elements, double ttt_lr_mult) {
  auto hidden = blocks_forward(cfg, w, embed(cfg, w, batch.input_ids), 0, cfg.num_hidden_layers, ttt_lr_mult);
  return pretrain_loss_of_hidden(cfg, w, hidden, batch, head_slice_elements);
}

SequenceLoss sequence_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& ttt) {
  if (!ttt.enabled) return pretrain_loss(cfg, w, batch, kHeadSliceElements, ttt.ttt_layer_lr_mult);
  check_whole_chunks(cfg, batch);
  return meta_loss(cfg, w, batch, ttt, /*create_graph=*/false);
}

SequenceLoss loss_and_backward(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& ttt,
                               int64_t remat_every, double scale) {
  if (ttt.enabled) {
    check_whole_chunks(cfg, batch);
    if (remat_every > 0) return meta_loss_backward(cfg, w, batch, ttt, remat_every, scale);
  }
  if (!ttt.enabled && cfg.remat_block == "nothing_saveable")
    return pretrain_loss_backward_recomputing(cfg, w, batch, scale, ttt.ttt_layer_lr_mult);
  auto out = ttt.enabled ? meta_loss(cfg, w, batch, ttt, /*create_graph=*/true)
                         : pretrain_loss(cfg, w, batch, kHeadSliceElements, ttt.ttt_layer_lr_mult);
  (out.loss * scale).backward();
  out.loss = out.loss.detach();
  out.per_sequence = out.per_sequence.detach();
  return out;
}

}  // namespace ttt

#include "ttt/sequence_loss.h"

#include <algorithm>

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

}  // namespace

SequenceLoss pretrain_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch) {
  auto nll = token_nll(full_sequence_logits(cfg, w, batch.input_ids), batch.targets);
  auto per_sequence = chunked_loss(nll, batch.loss_mask, std::min(cfg.mini_batch_size, nll.size(1)));
  return SequenceLoss{per_sequence.mean(), per_sequence, nll.detach()};
}

SequenceLoss sequence_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& ttt) {
  if (!ttt.enabled) return pretrain_loss(cfg, w, batch);
  check_whole_chunks(cfg, batch);
  return meta_loss(cfg, w, batch, ttt, /*create_graph=*/false);
}

SequenceLoss loss_and_backward(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& ttt,
                               int64_t remat_every, double scale) {
  if (ttt.enabled) {
    check_whole_chunks(cfg, batch);
    if (remat_every > 0) return meta_loss_backward(cfg, w, batch, ttt, remat_every, scale);
  }
  auto out = ttt.enabled ? meta_loss(cfg, w, batch, ttt, /*create_graph=*/true) : pretrain_loss(cfg, w, batch);
  (out.loss * scale).backward();
  out.loss = out.loss.detach();
  out.per_sequence = out.per_sequence.detach();
  return out;
}

}  // namespace ttt

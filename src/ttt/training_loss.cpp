#include "ttt/training_loss.h"

#include "ttt/meta_remat.h"

namespace ttt {

SequenceLoss loss_and_backward(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch,
                               const TttOptions& options, int64_t remat_every, double scale) {
  if (options.meta && remat_every > 0) return meta_loss_backward_remat(cfg, w, batch, options, remat_every, scale);
  TttOptions differentiable = options;
  differentiable.step.create_graph = options.meta;  // meta-learning: through every inner step
  auto out = sequence_loss(cfg, w, batch, differentiable);
  (out.loss * scale).backward();
  out.loss = out.loss.detach();
  out.per_sequence = out.per_sequence.detach();
  return out;
}

}  // namespace ttt

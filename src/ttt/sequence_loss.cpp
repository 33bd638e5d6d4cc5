#include "ttt/sequence_loss.h"

#include "model/layers.h"
#include "model/transformer.h"
#include "ttt/inner_optimizer.h"

namespace ttt {
namespace {

// Equal-weight mean over chunks of the per-chunk masked mean NLL: nll, mask [B, T] -> [B].
torch::Tensor chunked_loss(const torch::Tensor& nll, const torch::Tensor& mask, int64_t chunk) {
  const int64_t B = nll.size(0), T = nll.size(1);
  return masked_mean_nll(nll.view({B, T / chunk, chunk}), mask.view({B, T / chunk, chunk})).mean(1);
}

}  // namespace

TttOptions TttOptions::from_config(const Config& config, int64_t outer_step) {
  TttOptions o;
  o.meta = config.training.train_mode == "meta";
  if (o.meta) o.inner = select_inner_params(config.model, config.training.spec_inner);
  o.step.lr = inner_learning_rate(config.training, outer_step);
  o.step.clip = config.training.optimizer_inner.clip_gradient;
  o.state_dtype = dtype_from_name(config.model.state_dtype);
  return o;
}

torch::Tensor prefix_forward(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids) {
  auto h = embed(cfg, w, ids);
  const auto attn = full_sequence_attention(cfg, ids.size(1));
  for (int64_t i = 0; i < cfg.num_hidden_layers - cfg.suffix_len; ++i) h = block_forward(cfg, w.block(i), h, attn);
  return h;
}

torch::Tensor full_sequence_logits(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids) {
  auto h = embed(cfg, w, ids);
  const auto attn = full_sequence_attention(cfg, ids.size(1));
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) h = block_forward(cfg, w.block(i), h, attn);
  return lm_head(cfg, w, h);
}

SequenceLoss pretrain_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch) {
  auto nll = token_nll(full_sequence_logits(cfg, w, batch.input_ids), batch.targets);
  auto per_sequence = chunked_loss(nll, batch.loss_mask, std::min(cfg.mini_batch_size, nll.size(1)));
  return SequenceLoss{per_sequence.mean(), per_sequence, nll.detach()};
}

SequenceLoss meta_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& options) {
  const int64_t B = batch.input_ids.size(0), T = batch.input_ids.size(1), b = cfg.mini_batch_size;
  auto prefix = prefix_forward(cfg, w, batch.input_ids);
  FastState state = init_fast_state(cfg, w, options.inner, B, options.state_dtype, options.step.create_graph);
  std::vector<torch::Tensor> chunk_losses, chunk_nll;
  for (int64_t c = 0; c < T / b; ++c) {
    auto logits = suffix_chunk_logits(cfg, w, options.inner, state, prefix.slice(1, c * b, (c + 1) * b));
    auto nll = token_nll(logits, batch.targets.slice(1, c * b, (c + 1) * b));
    auto loss_c = masked_mean_nll(nll, batch.loss_mask.slice(1, c * b, (c + 1) * b));  // [B]
    // The last chunk's update would only matter to a following chunk: training skips it.
    if (c + 1 < T / b) take_inner_step(state, loss_c, options.step);
    chunk_losses.push_back(options.step.create_graph ? loss_c : loss_c.detach());
    chunk_nll.push_back(nll.detach());
  }
  auto per_sequence = torch::stack(chunk_losses, 1).mean(1);
  return SequenceLoss{per_sequence.mean(), per_sequence, torch::cat(chunk_nll, 1)};
}

SequenceLoss sequence_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& options) {
  if (batch.input_ids.size(1) % cfg.mini_batch_size != 0 && options.meta)
    throw ConfigError("sequence length " + std::to_string(batch.input_ids.size(1)) +
                      " is not a multiple of model.mini_batch_size " + std::to_string(cfg.mini_batch_size));
  return options.meta ? meta_loss(cfg, w, batch, options) : pretrain_loss(cfg, w, batch);
}

}  // namespace ttt

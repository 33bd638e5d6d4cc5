#include "ttt/ttt_options.h"

#include <algorithm>

#include "model/layers.h"
#include "model/param_filter.h"

namespace ttt {

std::vector<InnerParam> select_inner_params(const ModelConfig& cfg, const std::vector<std::string>& spec_inner) {
  const auto layout = param_layout(cfg);
  std::vector<std::string> split_names;
  for (const auto& p : layout) split_names.push_back(p.split_name);
  ParamFilter filter(spec_inner, "training.spec_inner");
  filter.check_every_spec_matches(split_names);

  const int64_t first_suffix = first_suffix_layer(cfg);
  std::vector<InnerParam> inner;
  for (const auto& p : layout) {
    if (!filter.selects(p.split_name)) continue;
    if (p.layer < first_suffix)
      throw ConfigError("training.spec_inner selects '" + p.name +
                        "', but inner parameters must lie in the suffix blocks");
    inner.push_back(InnerParam{p.name, p.layer - first_suffix, p.slot});
  }
  return inner;
}

double inner_learning_rate(const TrainingConfig& training, int64_t step) {
  const double lr = training.optimizer_inner.lr;
  if (training.ilr_warmup_steps <= 0) return lr;
  // min(1, (step + 1) / warmup), without forming step + 1 for the largest steps.
  const double progress = step >= training.ilr_warmup_steps - 1
                              ? 1.0
                              : static_cast<double>(step + 1) / static_cast<double>(training.ilr_warmup_steps);
  return training.ilr_init + (lr - training.ilr_init) * progress;
}

double ttt_layer_lr_multiplier(const ModelConfig& model, int64_t step) {
  if (model.ttt_base_lr_init <= 0 || model.ttt_base_lr_warmup <= 0) return 1.0;
  const double progress = std::min(1.0, static_cast<double>(step) / static_cast<double>(model.ttt_base_lr_warmup));
  const double lr = model.ttt_base_lr_init + progress * (model.ttt_base_lr - model.ttt_base_lr_init);
  return torch::scalar_tensor(lr / model.ttt_base_lr, torch::kFloat64).to(torch::kBFloat16).item<double>();
}

TttOptions TttOptions::for_step(const Config& config, int64_t step) {
  TttOptions o;
  o.enabled = config.training.train_mode == TrainMode::kMeta;
  if (o.enabled) o.inner = select_inner_params(config.model, config.training.spec_inner);
  o.lr = inner_learning_rate(config.training, step);
  o.clip = config.training.optimizer_inner.clip_gradient;
  o.state_dtype = scalar_type(config.model.state_dtype);
  o.ttt_layer_lr_mult = ttt_layer_lr_multiplier(config.model, step);
  return o;
}

TttOptions TttOptions::for_end_of_training(const Config& config, int64_t step) {
  TttOptions o = for_step(config, step);
  o.ttt_layer_lr_mult = 1.0;
  return o;
}

TttOptions TttOptions::for_inference(const Config& config, bool test_time_training) {
  TttOptions o = for_step(config, 0);
  o.lr = config.training.optimizer_inner.lr;  // the full inner lr: past any warm-up
  o.suffix_attention = AttentionKernel::kFused;
  o.ttt_layer_lr_mult = 1.0;
  if (!test_time_training) {
    o.enabled = false;
    o.inner.clear();
  }
  return o;
}

}  // namespace ttt

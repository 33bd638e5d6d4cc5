#include "ttt/ttt_options.h"

#include "model/layers.h"
#include "model/param_filter.h"

namespace ttt {

std::vector<InnerParam> select_inner_params(const ModelConfig& cfg, const std::vector<std::string>& spec_inner) {
  const auto layout = param_layout(cfg);
  std::vector<std::string> split_names;
  for (const auto& p : layout) split_names.push_back(p.split_name);
  ParamFilter filter(spec_inner, "training.spec_inner");
  filter.check_every_spec_matches(split_names);

  const int64_t first_suffix = cfg.num_hidden_layers - cfg.suffix_len;
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
  if (training.ilr_warmup_steps <= 0 || step >= training.ilr_warmup_steps - 1) return lr;
  const double progress = static_cast<double>(step + 1) / static_cast<double>(training.ilr_warmup_steps);
  return training.ilr_init + (lr - training.ilr_init) * progress;
}

TttOptions TttOptions::for_step(const Config& config, int64_t step) {
  TttOptions o;
  o.enabled = config.training.train_mode == TrainMode::kMeta;
  if (o.enabled) o.inner = select_inner_params(config.model, config.training.spec_inner);
  o.lr = inner_learning_rate(config.training, step);
  o.clip = config.training.optimizer_inner.clip_gradient;
  o.state_dtype = scalar_type(config.model.state_dtype);
  return o;
}

TttOptions TttOptions::for_inference(const Config& config, bool test_time_training) {
  TttOptions o = for_step(config, kAfterWarmup);
  if (!test_time_training) {
    o.enabled = false;
    o.inner.clear();
  }
  return o;
}

}  // namespace ttt

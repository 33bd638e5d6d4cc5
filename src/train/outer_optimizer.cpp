#include "train/outer_optimizer.h"

#include "model/param_filter.h"

namespace ttt {

double global_norm(const std::vector<torch::Tensor>& grads) {
  double sq = 0.0;
  for (const auto& g : grads)
    if (g.defined()) sq += g.to(torch::kFloat64).pow(2).sum().item<double>();
  return std::sqrt(sq);
}

OuterOptimizer::OuterOptimizer(const OptimizerConfig& config, const std::vector<std::string>& spec_outer,
                               ModelWeights& weights)
    : config_(config) {
  if (config.optimizer_type != "adamw")
    throw ConfigError("training.optimizer_outer.optimizer_type: only adamw is supported for the outer loop");
  if (config.bf16_momentum)
    throw ConfigError("training.optimizer_outer.bf16_momentum: bf16 optimizer moments are not supported; use false");
  ParamFilter filter(spec_outer, "training.spec_outer");
  std::vector<std::string> names;
  for (const auto& p : weights.layout()) names.push_back(p.name);
  filter.check_every_spec_matches(names);

  std::vector<torch::Tensor> decayed, not_decayed;
  for (size_t i = 0; i < names.size(); ++i) {
    auto& t = weights.tensors()[i];
    const bool train = filter.selects(names[i]);
    t.requires_grad_(train);
    if (!train) continue;
    trainable_.push_back(t);
    // The reference's emb_wd=false mask matches "wte" in the parameter path.
    const bool is_embedding = names[i].find("wte") != std::string::npos;
    (is_embedding && !config.emb_wd ? not_decayed : decayed).push_back(t);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(config.lr).betas({config.b1, config.b2}).eps(1e-8).weight_decay(wd));
  };
  if (!decayed.empty()) groups.emplace_back(decayed, options(config.weight_decay));
  if (!not_decayed.empty()) groups.emplace_back(not_decayed, options(0.0));
  adamw_ = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(config.lr));
}

void OuterOptimizer::zero_grad() {
  for (auto& t : trainable_)
    if (t.grad().defined()) t.mutable_grad() = torch::Tensor();
}

double OuterOptimizer::clip_gradients() {
  std::vector<torch::Tensor> grads;
  for (auto& t : trainable_) grads.push_back(t.grad());
  const double norm = global_norm(grads);
  if (config_.clip_gradient > 0 && norm >= config_.clip_gradient) {
    torch::NoGradGuard no_grad;
    const double scale = config_.clip_gradient / norm;
    for (auto& g : grads)
      if (g.defined()) g.mul_(scale);
  }
  return norm;
}

void OuterOptimizer::step(double learning_rate) {
  for (auto& group : adamw_->param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(learning_rate);
  adamw_->step();
}

}  // namespace ttt

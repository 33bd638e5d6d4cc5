#include "train/outer_optimizer.h"

#include "model/param_filter.h"
#include "util/torch_compat.h"

namespace ttt {

torch::Tensor global_norm(const std::vector<torch::Tensor>& grads) {
  // Summed one tensor after another in float64, the order a host loop would add them in.
  torch::Tensor sq;
  for (const auto& g : grads) {
    if (!g.defined()) continue;
    auto s = g.to(torch::kFloat64).pow(2).sum();
    sq = sq.defined() ? sq + s : s;
  }
  return sq.defined() ? sq.sqrt() : torch::zeros({}, torch::kFloat64);
}

double logged_gradient_norm(double norm) { return std::sqrt(norm * norm + 1e-5); }

OuterOptimizer::OuterOptimizer(const OptimizerConfig& config, const std::vector<std::string>& spec_outer,
                               ModelWeights& weights)
    : config_(config) {
  if (config.optimizer_type != OptimizerType::kAdamW)
    throw ConfigError("training.optimizer_outer.optimizer_type: only adamw is supported for the outer loop");
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
    trainable_names_.push_back(names[i]);
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

std::vector<std::pair<std::string, torch::Tensor>> OuterOptimizer::state_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  auto& state = adamw_->state();
  for (size_t i = 0; i < trainable_.size(); ++i) {
    auto it = state.find(optimizer_state_key(trainable_[i]));
    if (it == state.end()) continue;
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    out.emplace_back("exp_avg." + trainable_names_[i], s.exp_avg());
    out.emplace_back("exp_avg_sq." + trainable_names_[i], s.exp_avg_sq());
    out.emplace_back("step." + trainable_names_[i], torch::tensor(s.step(), torch::kInt64));
  }
  return out;
}

void OuterOptimizer::load_state_tensors(const std::map<std::string, torch::Tensor>& tensors) {
  auto& state = adamw_->state();
  for (size_t i = 0; i < trainable_.size(); ++i) {
    const auto& name = trainable_names_[i];
    auto avg = tensors.find("exp_avg." + name), avg_sq = tensors.find("exp_avg_sq." + name),
         step = tensors.find("step." + name);
    if (avg == tensors.end() && avg_sq == tensors.end() && step == tensors.end()) continue;  // never stepped
    if (avg == tensors.end() || avg_sq == tensors.end() || step == tensors.end())
      throw std::runtime_error("optimizer state is incomplete for parameter '" + name + "'");
    const auto& p = trainable_[i];
    for (const auto* moment : {&avg->second, &avg_sq->second}) {
      if (moment->sizes() != p.sizes())
        throw std::runtime_error("optimizer state for '" + name + "' has shape " + c10::str(moment->sizes()) +
                                 ", the parameter " + c10::str(p.sizes()));
      if (moment->scalar_type() != p.scalar_type())
        throw std::runtime_error("optimizer state for '" + name + "' is " + c10::toString(moment->scalar_type()) +
                                 ", the parameter " + c10::toString(p.scalar_type()));
      if (!torch::isfinite(*moment).all().item<bool>())
        throw std::runtime_error("optimizer state for '" + name + "' holds non-finite values");
    }
    const auto& count = step->second;
    if (count.dim() != 0 || count.scalar_type() != torch::kInt64 || count.item<int64_t>() < 0 ||
        count.item<int64_t>() > (int64_t{1} << 40))
      throw std::runtime_error("optimizer step count for '" + name + "' is not a step count (an int64 scalar >= 0)");
    if (avg_sq->second.min().item<double>() < 0)
      throw std::runtime_error("optimizer state for '" + name + "' has a negative second moment");
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(count.item<int64_t>());
    s->exp_avg(avg->second.to(p.device(), p.scalar_type()).clone());
    s->exp_avg_sq(avg_sq->second.to(p.device(), p.scalar_type()).clone());
    state[optimizer_state_key(p)] = std::move(s);
  }
}

void OuterOptimizer::zero_grad() {
  for (auto& t : trainable_)
    if (t.grad().defined()) t.mutable_grad() = torch::Tensor();
}

torch::Tensor OuterOptimizer::clip_gradients() {
  std::vector<torch::Tensor> grads;
  for (auto& t : trainable_) grads.push_back(t.grad());
  auto norm = global_norm(grads);
  if (config_.clip_gradient > 0) {
    torch::NoGradGuard no_grad;
    // The scale is chosen on the device; a factor of exactly 1 leaves unclipped gradients bitwise
    // as they are.
    const double clip = config_.clip_gradient;
    const auto scale = torch::where(norm >= clip, clip / norm, torch::ones_like(norm));
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

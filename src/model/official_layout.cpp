#include "model/official_layout.h"

#include <set>
#include <stdexcept>

#include "util/strings.h"

namespace ttt {

namespace {

// How many blocks an official leaf stacks: L for block parameters, S for prime ones, 0 for none.
int64_t stack_count(const ParamSpec& spec, const ModelConfig& cfg) {
  if (spec.layer < 0) return 0;
  return is_prime_slot(spec.slot) ? cfg.suffix_len : cfg.num_hidden_layers;
}

}  // namespace

// The official layout is TTT-E2E's (ttt-lm-jax keeps its blocks unstacked, under other names).
void check_e2e_layout(const ModelConfig& cfg) {
  if (is_ttt_layer(cfg.seq_modeling_block))
    throw ConfigError("the official checkpoint layout is TTT-E2E's; model.seq_modeling_block " +
                      to_string(cfg.seq_modeling_block) + " (a ttt-lm-jax TTT layer) has no place in it");
}

std::pair<std::string, int64_t> official_param_name(const ParamSpec& spec, const ModelConfig& cfg) {
  if (spec.layer < 0) return {spec.name, -1};
  const std::string relative = block_param_name(spec.slot);
  if (is_prime_slot(spec.slot)) return {kPrimeStoragePrefix + relative, spec.layer - first_suffix_layer(cfg)};
  return {kBlocksPrefix + relative, spec.layer};
}

std::vector<std::pair<std::string, torch::Tensor>> to_official_layout(const ModelConfig& cfg, const ModelWeights& w) {
  check_e2e_layout(cfg);
  // Leaves in the order their first block appears in our layout; each gathers its blocks in order.
  std::vector<std::string> order;
  std::map<std::string, std::vector<torch::Tensor>> parts;
  for (size_t i = 0; i < w.layout().size(); ++i) {
    const auto [name, index] = official_param_name(w.layout()[i], cfg);
    auto& list = parts[name];
    if (list.empty()) order.push_back(name);
    if (index >= 0 && index != static_cast<int64_t>(list.size()))
      throw std::logic_error("official layout: blocks of " + name + " out of order");
    list.push_back(w.tensors()[i].detach());
  }
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& name : order) {
    const auto& list = parts[name];
    const bool stacked = starts_with(name, kBlocksPrefix) || starts_with(name, kPrimeStoragePrefix);
    out.emplace_back(name, stacked ? torch::stack(list) : list.front().clone());
  }
  return out;
}

ModelWeights from_official_layout(const ModelConfig& cfg, const std::map<std::string, torch::Tensor>& leaves,
                                  torch::ScalarType dtype, const std::string& source) {
  check_e2e_layout(cfg);
  ModelWeights w = ModelWeights::zeros(cfg, dtype, torch::kCPU);
  // Unstack every leaf into our names; copy_named_tensors then checks each parameter.
  std::map<std::string, torch::Tensor> named;
  std::set<std::string> used;
  for (const ParamSpec& spec : w.layout()) {
    const auto [name, index] = official_param_name(spec, cfg);
    const auto found = leaves.find(name);
    if (found == leaves.end()) throw std::runtime_error(source + ": missing parameter " + name);
    std::vector<int64_t> expected = spec.shape;
    if (index >= 0) expected.insert(expected.begin(), stack_count(spec, cfg));
    if (found->second.sizes().vec() != expected)
      throw std::runtime_error(source + ": " + name + " has shape " + c10::str(found->second.sizes()) +
                               ", the configuration needs " + c10::str(c10::IntArrayRef(expected)));
    named[spec.name] = index >= 0 ? found->second[index] : found->second;
    used.insert(name);
  }
  for (const auto& [name, tensor] : leaves)
    if (!used.count(name)) throw std::runtime_error(source + ": parameter " + name + " is not in this configuration");
  copy_named_tensors(std::move(named), w, source);
  return w;
}

}  // namespace ttt

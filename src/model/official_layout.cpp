#include "model/official_layout.h"

#include <set>
#include <stdexcept>

#include "util/strings.h"

namespace ttt {

namespace {

const std::string kBlocks = "language_model.model.h.blocks.";
const std::string kPrimeStorage = "language_model.model.h.prime_storage.";

std::string shape_text(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The stacked shape of an official leaf: the per-block shape behind the number of stacked blocks.
std::vector<int64_t> stacked_shape(const ParamSpec& spec, int64_t stacked) {
  std::vector<int64_t> shape = spec.shape;
  if (stacked > 0) shape.insert(shape.begin(), stacked);
  return shape;
}

bool is_prime_slot(BlockSlot slot) { return static_cast<int>(slot) >= static_cast<int>(BlockSlot::kPrimeW1); }

// How many blocks an official leaf stacks: L for block parameters, S for prime ones, 0 for none.
int64_t stack_count(const ParamSpec& spec, const ModelConfig& cfg) {
  if (spec.layer < 0) return 0;
  return is_prime_slot(spec.slot) ? cfg.suffix_len : cfg.num_hidden_layers;
}

}  // namespace

std::pair<std::string, int64_t> official_param_name(const ParamSpec& spec, const ModelConfig& cfg) {
  if (spec.layer < 0) return {spec.name, -1};
  const std::string relative = block_param_name(spec.slot);
  if (is_prime_slot(spec.slot)) return {kPrimeStorage + relative, spec.layer - first_suffix_layer(cfg)};
  return {kBlocks + relative, spec.layer};
}

std::vector<std::pair<std::string, torch::Tensor>> to_official_layout(const ModelConfig& cfg, const ModelWeights& w) {
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
    const bool stacked = starts_with(name, kBlocks) || starts_with(name, kPrimeStorage);
    out.emplace_back(name, stacked ? torch::stack(list) : list.front());
  }
  return out;
}

ModelWeights from_official_layout(const ModelConfig& cfg, const std::map<std::string, torch::Tensor>& leaves,
                                  torch::ScalarType dtype, const std::string& source) {
  ModelWeights w = ModelWeights::zeros(cfg, dtype, torch::kCPU);
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < w.layout().size(); ++i) {
    const ParamSpec& spec = w.layout()[i];
    const auto [name, index] = official_param_name(spec, cfg);
    const auto found = leaves.find(name);
    if (found == leaves.end()) throw std::runtime_error(source + ": missing parameter " + name);
    const auto expected = stacked_shape(spec, stack_count(spec, cfg));
    if (found->second.sizes() != at::IntArrayRef(expected))
      throw std::runtime_error(source + ": " + name + " has shape " + shape_text(found->second.sizes()) +
                               ", the configuration needs " + shape_text(expected));
    const torch::Tensor value = index >= 0 ? found->second[index] : found->second;
    w.tensors()[i].copy_(value.to(dtype));
    used.insert(name);
  }
  for (const auto& [name, tensor] : leaves)
    if (!used.count(name)) throw std::runtime_error(source + ": parameter " + name + " is not in this configuration");
  return w;
}

}  // namespace ttt

#include "ttt/fast_state.h"

#include "model/layers.h"
#include "model/param_filter.h"
#include "model/param_layout.h"
#include "model/transformer.h"
#include "ttt/inner_optimizer.h"

namespace ttt {

InnerParams select_inner_params(const ModelConfig& cfg, const std::vector<std::string>& spec_inner) {
  const auto layout = param_layout(cfg);
  std::vector<std::string> split_names;
  for (const auto& p : layout) split_names.push_back(p.split_name);
  ParamFilter filter(spec_inner, "training.spec_inner");
  filter.check_every_spec_matches(split_names);

  const std::string suffix = "language_model.model.h.suffix_blocks.";
  InnerParams inner;
  for (const auto& p : layout) {
    if (!filter.selects(p.split_name)) continue;
    if (p.split_name.rfind(suffix, 0) != 0)
      throw ConfigError("training.spec_inner selects '" + p.name + "', but inner parameters must lie in the suffix blocks");
    const std::string rest = p.split_name.substr(suffix.size());  // "<j>.<local name>"
    const auto dot = rest.find('.');
    inner.names.push_back(p.name);
    inner.suffix_block.push_back(std::stoll(rest.substr(0, dot)));
    inner.local_names.push_back(rest.substr(dot + 1));
  }
  return inner;
}

FastState init_fast_state(const ModelConfig& cfg, const ModelWeights& w, const InnerParams& inner, int64_t batch,
                          torch::ScalarType state_dtype, bool through_outer) {
  FastState state;
  for (const auto& name : inner.names) {
    auto p = w.get(name);
    auto dtype = p.scalar_type() == torch::kFloat64 ? torch::kFloat64 : state_dtype;
    std::vector<int64_t> shape{batch};
    for (auto s : p.sizes()) shape.push_back(s);
    if (through_outer)
      state.theta.push_back(p.to(dtype).unsqueeze(0).expand(shape));
    else
      state.theta.push_back(p.detach().to(dtype).unsqueeze(0).expand(shape).clone().requires_grad_(true));
  }
  const auto cache_dtype = w.wte().scalar_type() == torch::kFloat64 ? torch::kFloat64
                                                                     : torch::ScalarType(dtype_from_name(cfg.compute_dtype));
  for (int64_t j = 0; j < cfg.suffix_len; ++j)
    state.caches.push_back(empty_kv_cache(cfg, batch, cache_dtype, w.wte().device()));
  return state;
}

torch::Tensor suffix_chunk_logits(const ModelConfig& cfg, const ModelWeights& w, const InnerParams& inner,
                                  FastState& state, const torch::Tensor& prefix_chunk) {
  const int64_t first_suffix = cfg.num_hidden_layers - cfg.suffix_len;
  auto x = prefix_chunk;
  for (int64_t j = 0; j < cfg.suffix_len; ++j) {
    BlockWeights block = w.block(first_suffix + j);
    for (size_t k = 0; k < inner.names.size(); ++k)
      if (inner.suffix_block[k] == j) block.member(inner.local_names[k]) = state.theta[k];
    x = block_forward_chunk(cfg, block, x, state.caches[j], state.next_chunk);
  }
  state.next_chunk += 1;
  return lm_head(cfg, w, x);
}

void take_inner_step(FastState& state, const torch::Tensor& loss_per_sequence, const InnerStepOptions& options) {
  auto grads = torch::autograd::grad({loss_per_sequence.sum()}, state.theta, /*grad_outputs=*/{},
                                     /*retain_graph=*/options.create_graph, /*create_graph=*/options.create_graph);
  state.theta = sgd_step(state.theta, grads, options.lr, options.clip);
  if (!options.create_graph) {
    for (auto& t : state.theta) t = t.detach().requires_grad_(true);
    for (auto& c : state.caches) c = KvCache{c.k.detach(), c.v.detach()};
  }
}

}  // namespace ttt

#include "model/param_layout.h"

#include "model/param_filter.h"

namespace ttt {

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

std::vector<ParamSpec> param_layout(const ModelConfig& m) {
  const int64_t D = m.hidden_size, I = m.intermediate_size, V = m.vocab_size;
  const int64_t L = m.num_hidden_layers, S = m.suffix_len;
  const int64_t d = D / m.num_attention_heads;
  const std::string h = "language_model.model.h.";
  std::vector<ParamSpec> out;
  auto add = [&](std::string name, std::string split, std::vector<int64_t> shape, ParamInit init) {
    out.push_back(ParamSpec{std::move(name), std::move(split), std::move(shape), init});
  };

  add("language_model.model.wte.weight", "language_model.model.wte.weight", {V, D}, ParamInit::kNormal);
  for (int64_t i = 0; i < L; ++i) {
    const std::string block = h + "blocks." + std::to_string(i) + ".";
    // In the split view prefix blocks are renumbered from 0, suffix blocks likewise.
    const bool suffix = i >= L - S;
    const std::string split = suffix ? h + "suffix_blocks." + std::to_string(i - (L - S)) + "."
                                     : h + "prefix_blocks." + std::to_string(i) + ".";
    for (const char* w : {"wq", "wk", "wv", "wo"})
      add(block + "seq_modeling_block." + w + ".weight", split + "seq_modeling_block." + w + ".weight", {D, D},
          ParamInit::kNormal);
    for (const char* n : {"q_norm", "k_norm"})
      add(block + "seq_modeling_block." + n + ".weight", split + "seq_modeling_block." + n + ".weight", {d},
          ParamInit::kOnes);
    for (const char* n : {"seq_norm", "seq_post_norm", "ffn_norm", "ffn_post_norm"})
      add(block + n + ".weight", split + n + ".weight", {D}, ParamInit::kOnes);
    add(block + "feed_forward.w1.weight", split + "feed_forward.w1.weight", {D, I}, ParamInit::kNormal);
    add(block + "feed_forward.w2.weight", split + "feed_forward.w2.weight", {I, D}, ParamInit::kNormal);
    add(block + "feed_forward.w3.weight", split + "feed_forward.w3.weight", {D, I}, ParamInit::kNormal);
  }
  if (m.prime) {
    for (int64_t j = 0; j < S; ++j) {
      const std::string store = h + "prime_storage." + std::to_string(j) + ".";
      const std::string split = h + "suffix_blocks." + std::to_string(j) + ".";
      add(store + "feed_forward_prime.w1.weight", split + "feed_forward_prime.w1.weight", {D, I}, ParamInit::kNormal);
      add(store + "feed_forward_prime.w2.weight", split + "feed_forward_prime.w2.weight", {I, D}, ParamInit::kNormal);
      add(store + "feed_forward_prime.w3.weight", split + "feed_forward_prime.w3.weight", {D, I}, ParamInit::kNormal);
      add(store + "ffn_prime_norm.weight", split + "ffn_prime_norm.weight", {D}, ParamInit::kOnes);
      add(store + "ffn_prime_post_norm.weight", split + "ffn_prime_post_norm.weight", {D}, ParamInit::kOnes);
    }
  }
  add("language_model.model.ln_f.weight", "language_model.model.ln_f.weight", {D}, ParamInit::kOnes);
  if (!m.tie_word_embeddings)
    add("language_model.lm_head.weight", "language_model.lm_head.weight", {D, m.output_size}, ParamInit::kNormal);
  return out;
}

ParamCounts count_params(const Config& config) {
  const auto layout = param_layout(config.model);
  std::vector<std::string> names, split_names;
  for (const auto& p : layout) {
    names.push_back(p.name);
    split_names.push_back(p.split_name);
  }
  ParamFilter outer(config.training.spec_outer, "training.spec_outer");
  outer.check_every_spec_matches(names);
  const bool meta = config.training.train_mode == "meta";
  ParamFilter inner(config.training.spec_inner, "training.spec_inner");
  if (meta) inner.check_every_spec_matches(split_names);

  ParamCounts c;
  for (const auto& p : layout) {
    const int64_t n = p.numel();
    c.total += n;
    if (p.name == "language_model.model.wte.weight" || p.name == "language_model.lm_head.weight") c.embedding += n;
    if (outer.selects(p.name)) c.outer += n;
    if (meta && inner.selects(p.split_name)) c.inner += n;
  }
  c.non_embedding = c.total - c.embedding;
  return c;
}

}  // namespace ttt

#include "model/param_layout.h"

#include <iterator>

#include "model/param_filter.h"

namespace ttt {
namespace {

enum class Dims { kHiddenHidden, kHeadDim, kHidden, kHiddenMlp, kMlpHidden };

struct BlockParamDef {
  const char* name;  // relative to the block
  BlockSlot slot;
  Dims dims;
  ParamInit init;
};

// The table: every block parameter, in layout order. Regular members first (stored under
// h.blocks.<i>), then the prime MLP of a suffix block (stored under h.prime_storage.<j>).
constexpr BlockParamDef kBlockParams[] = {
    {"seq_modeling_block.wq.weight", BlockSlot::kWq, Dims::kHiddenHidden, ParamInit::kNormal},
    {"seq_modeling_block.wk.weight", BlockSlot::kWk, Dims::kHiddenHidden, ParamInit::kNormal},
    {"seq_modeling_block.wv.weight", BlockSlot::kWv, Dims::kHiddenHidden, ParamInit::kNormal},
    {"seq_modeling_block.wo.weight", BlockSlot::kWo, Dims::kHiddenHidden, ParamInit::kNormal},
    {"seq_modeling_block.q_norm.weight", BlockSlot::kQNorm, Dims::kHeadDim, ParamInit::kOnes},
    {"seq_modeling_block.k_norm.weight", BlockSlot::kKNorm, Dims::kHeadDim, ParamInit::kOnes},
    {"seq_norm.weight", BlockSlot::kSeqNorm, Dims::kHidden, ParamInit::kOnes},
    {"seq_post_norm.weight", BlockSlot::kSeqPostNorm, Dims::kHidden, ParamInit::kOnes},
    {"ffn_norm.weight", BlockSlot::kFfnNorm, Dims::kHidden, ParamInit::kOnes},
    {"ffn_post_norm.weight", BlockSlot::kFfnPostNorm, Dims::kHidden, ParamInit::kOnes},
    {"feed_forward.w1.weight", BlockSlot::kFfnW1, Dims::kHiddenMlp, ParamInit::kNormal},
    {"feed_forward.w2.weight", BlockSlot::kFfnW2, Dims::kMlpHidden, ParamInit::kNormal},
    {"feed_forward.w3.weight", BlockSlot::kFfnW3, Dims::kHiddenMlp, ParamInit::kNormal},
    {"feed_forward_prime.w1.weight", BlockSlot::kPrimeW1, Dims::kHiddenMlp, ParamInit::kNormal},
    {"feed_forward_prime.w2.weight", BlockSlot::kPrimeW2, Dims::kMlpHidden, ParamInit::kNormal},
    {"feed_forward_prime.w3.weight", BlockSlot::kPrimeW3, Dims::kHiddenMlp, ParamInit::kNormal},
    {"ffn_prime_norm.weight", BlockSlot::kPrimeNorm, Dims::kHidden, ParamInit::kOnes},
    {"ffn_prime_post_norm.weight", BlockSlot::kPrimePostNorm, Dims::kHidden, ParamInit::kOnes},
};
static_assert(std::size(kBlockParams) == kNumBlockSlots, "one table entry per block slot");

std::vector<int64_t> shape_of(Dims dims, const ModelConfig& m) {
  const int64_t D = m.hidden_size, I = m.intermediate_size, d = D / m.num_attention_heads;
  switch (dims) {
    case Dims::kHiddenHidden:
      return {D, D};
    case Dims::kHeadDim:
      return {d};
    case Dims::kHidden:
      return {D};
    case Dims::kHiddenMlp:
      return {D, I};
    case Dims::kMlpHidden:
      return {I, D};
  }
  return {};
}

}  // namespace

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

const char* block_param_name(BlockSlot slot) { return kBlockParams[static_cast<int>(slot)].name; }

bool is_prime_slot(BlockSlot slot) { return static_cast<int>(slot) >= static_cast<int>(BlockSlot::kPrimeW1); }

std::vector<ParamSpec> param_layout(const ModelConfig& m) {
  const int64_t L = m.num_hidden_layers, S = m.suffix_len, first_suffix = first_suffix_layer(m);
  const std::string h = "language_model.model.h.";
  // In the split view prefix blocks are numbered from 0, suffix blocks likewise.
  auto split_block = [&](int64_t i) {
    return i >= first_suffix ? h + "suffix_blocks." + std::to_string(i - first_suffix) + "."
                             : h + "prefix_blocks." + std::to_string(i) + ".";
  };
  std::vector<ParamSpec> out;
  auto add_model_param = [&](const std::string& name, std::vector<int64_t> shape, ParamInit init) {
    out.push_back(ParamSpec{name, name, std::move(shape), init, -1, BlockSlot::kWq});
  };

  add_model_param("language_model.model.wte.weight", {m.vocab_size, m.hidden_size}, ParamInit::kNormal);
  for (int64_t i = 0; i < L; ++i) {
    const std::string stored = kBlocksPrefix + std::to_string(i) + ".";
    for (const auto& p : kBlockParams)
      if (!is_prime_slot(p.slot))
        out.push_back(ParamSpec{stored + p.name, split_block(i) + p.name, shape_of(p.dims, m), p.init, i, p.slot});
  }
  if (m.prime) {
    for (int64_t j = 0; j < S; ++j) {
      const std::string stored = kPrimeStoragePrefix + std::to_string(j) + ".";
      const int64_t i = first_suffix + j;
      for (const auto& p : kBlockParams)
        if (is_prime_slot(p.slot))
          out.push_back(ParamSpec{stored + p.name, split_block(i) + p.name, shape_of(p.dims, m), p.init, i, p.slot});
    }
  }
  add_model_param("language_model.model.ln_f.weight", {m.hidden_size}, ParamInit::kOnes);
  if (!m.tie_word_embeddings)
    add_model_param("language_model.lm_head.weight", {m.hidden_size, m.output_size}, ParamInit::kNormal);
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
  const bool meta = config.training.train_mode == TrainMode::kMeta;
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

#include "model/param_layout.h"

#include <iterator>

#include "model/param_filter.h"

namespace ttt {
namespace {

enum class Dims {
  kHiddenHidden,
  kHeadDim,
  kHidden,
  kHiddenMlp,
  kMlpHidden,
  kHeadsHidden,    // [H, D]
  kHeads,          // [H]
  kMiniBatch,      // [b]
  kHeadsHeadDim,   // [H, d]
  kConvHidden,     // [K, D]
  kInnerW1,        // [H, d, d'] (d' = d for TTT-Linear, 4d for TTT-MLP)
  kInnerB1,        // [H, 1, d']
  kInnerW2,        // [H, 4d, d]
  kInnerHeadBias,  // [H, 1, d]
};

// Which models have a parameter.
enum class Needs {
  kAll,
  kQkNorm,         // attention blocks with model.qk_norm
  kKeyProjection,  // attention blocks and TTT layers with the Transformer backbone
  kPostNorm,       // model.post_norm
  kTtt,            // TTT-layer blocks
  kTttMamba,       // TTT layers with the Mamba backbone
  kTttMlp,         // TTT-MLP
  kPreConv,        // model.pre_conv
  kPrime,          // suffix blocks of a prime model
};

struct BlockParamDef {
  const char* name;  // relative to the block
  BlockSlot slot;
  Dims dims;
  ParamInit init;
  Needs needs;
};

// The table: every block parameter, in layout order. Regular members first (stored under
// h.blocks.<i>), then the prime MLP of a suffix block (stored under h.prime_storage.<j>).
constexpr BlockParamDef kBlockParams[] = {
    {"seq_modeling_block.wq.weight", BlockSlot::kWq, Dims::kHiddenHidden, ParamInit::kNormal, Needs::kAll},
    {"seq_modeling_block.wk.weight", BlockSlot::kWk, Dims::kHiddenHidden, ParamInit::kNormal, Needs::kKeyProjection},
    {"seq_modeling_block.wv.weight", BlockSlot::kWv, Dims::kHiddenHidden, ParamInit::kNormal, Needs::kAll},
    {"seq_modeling_block.wo.weight", BlockSlot::kWo, Dims::kHiddenHidden, ParamInit::kNormal, Needs::kAll},
    {"seq_modeling_block.q_norm.weight", BlockSlot::kQNorm, Dims::kHeadDim, ParamInit::kOnes, Needs::kQkNorm},
    {"seq_modeling_block.k_norm.weight", BlockSlot::kKNorm, Dims::kHeadDim, ParamInit::kOnes, Needs::kQkNorm},
    {"seq_norm.weight", BlockSlot::kSeqNorm, Dims::kHidden, ParamInit::kOnes, Needs::kAll},
    {"seq_post_norm.weight", BlockSlot::kSeqPostNorm, Dims::kHidden, ParamInit::kOnes, Needs::kPostNorm},
    {"ffn_norm.weight", BlockSlot::kFfnNorm, Dims::kHidden, ParamInit::kOnes, Needs::kAll},
    {"ffn_post_norm.weight", BlockSlot::kFfnPostNorm, Dims::kHidden, ParamInit::kOnes, Needs::kPostNorm},
    {"feed_forward.w1.weight", BlockSlot::kFfnW1, Dims::kHiddenMlp, ParamInit::kNormal, Needs::kAll},
    {"feed_forward.w2.weight", BlockSlot::kFfnW2, Dims::kMlpHidden, ParamInit::kNormal, Needs::kAll},
    {"feed_forward.w3.weight", BlockSlot::kFfnW3, Dims::kHiddenMlp, ParamInit::kNormal, Needs::kAll},
    {"seq_modeling_block.wg.weight", BlockSlot::kWg, Dims::kHiddenHidden, ParamInit::kNormal, Needs::kTttMamba},
    {"seq_modeling_block.conv_q.weight", BlockSlot::kConvQWeight, Dims::kConvHidden, ParamInit::kLecunNormal,
     Needs::kTttMamba},
    {"seq_modeling_block.conv_q.bias", BlockSlot::kConvQBias, Dims::kHidden, ParamInit::kZeros, Needs::kTttMamba},
    {"seq_modeling_block.conv_k.weight", BlockSlot::kConvKWeight, Dims::kConvHidden, ParamInit::kLecunNormal,
     Needs::kTttMamba},
    {"seq_modeling_block.conv_k.bias", BlockSlot::kConvKBias, Dims::kHidden, ParamInit::kZeros, Needs::kTttMamba},
    {"seq_modeling_block.learnable_ttt_lr.weight", BlockSlot::kTttLrGateWeight, Dims::kHeadsHidden, ParamInit::kNormal,
     Needs::kTtt},
    {"seq_modeling_block.learnable_ttt_lr.bias", BlockSlot::kTttLrGateBias, Dims::kHeads, ParamInit::kZeros,
     Needs::kTtt},
    {"seq_modeling_block.learnable_token_idx", BlockSlot::kTttTokenIdx, Dims::kMiniBatch, ParamInit::kZeros,
     Needs::kTtt},
    {"seq_modeling_block.ttt_norm.weight", BlockSlot::kTttNormWeight, Dims::kHeadsHeadDim, ParamInit::kOnes,
     Needs::kTtt},
    {"seq_modeling_block.ttt_norm.bias", BlockSlot::kTttNormBias, Dims::kHeadsHeadDim, ParamInit::kZeros, Needs::kTtt},
    {"seq_modeling_block.post_norm.weight", BlockSlot::kTttPostNormWeight, Dims::kHidden, ParamInit::kOnes,
     Needs::kTtt},
    {"seq_modeling_block.post_norm.bias", BlockSlot::kTttPostNormBias, Dims::kHidden, ParamInit::kZeros, Needs::kTtt},
    {"seq_modeling_block.ttt_dense_0", BlockSlot::kTttW1, Dims::kInnerW1, ParamInit::kNormal, Needs::kTtt},
    {"seq_modeling_block.ttt_bias_0", BlockSlot::kTttB1, Dims::kInnerB1, ParamInit::kZeros, Needs::kTtt},
    {"seq_modeling_block.ttt_dense_1", BlockSlot::kTttW2, Dims::kInnerW2, ParamInit::kNormal, Needs::kTttMlp},
    {"seq_modeling_block.ttt_bias_1", BlockSlot::kTttB2, Dims::kInnerHeadBias, ParamInit::kZeros, Needs::kTttMlp},
    {"conv.conv1.weight", BlockSlot::kPreConvWeight, Dims::kConvHidden, ParamInit::kLecunNormal, Needs::kPreConv},
    {"conv.conv1.bias", BlockSlot::kPreConvBias, Dims::kHidden, ParamInit::kZeros, Needs::kPreConv},
    {"conv.conv_norm.weight", BlockSlot::kPreConvNorm, Dims::kHidden, ParamInit::kOnes, Needs::kPreConv},
    {"feed_forward_prime.w1.weight", BlockSlot::kPrimeW1, Dims::kHiddenMlp, ParamInit::kNormal, Needs::kPrime},
    {"feed_forward_prime.w2.weight", BlockSlot::kPrimeW2, Dims::kMlpHidden, ParamInit::kNormal, Needs::kPrime},
    {"feed_forward_prime.w3.weight", BlockSlot::kPrimeW3, Dims::kHiddenMlp, ParamInit::kNormal, Needs::kPrime},
    {"ffn_prime_norm.weight", BlockSlot::kPrimeNorm, Dims::kHidden, ParamInit::kOnes, Needs::kPrime},
    {"ffn_prime_post_norm.weight", BlockSlot::kPrimePostNorm, Dims::kHidden, ParamInit::kOnes, Needs::kPrime},
};
static_assert(std::size(kBlockParams) == kNumBlockSlots, "one table entry per block slot");

std::vector<int64_t> shape_of(Dims dims, const ModelConfig& m) {
  const int64_t D = m.hidden_size, I = m.intermediate_size, H = m.num_attention_heads, d = D / H;
  const int64_t inner_width = is_ttt_mlp(m.seq_modeling_block) ? 4 * d : d;
  switch (dims) {
    case Dims::kHeadsHidden:
      return {H, D};
    case Dims::kHeads:
      return {H};
    case Dims::kMiniBatch:
      return {m.mini_batch_size};
    case Dims::kHeadsHeadDim:
      return {H, d};
    case Dims::kConvHidden:
      return {m.conv_width, D};
    case Dims::kInnerW1:
      return {H, d, inner_width};
    case Dims::kInnerB1:
      return {H, 1, inner_width};
    case Dims::kInnerW2:
      return {H, 4 * d, d};
    case Dims::kInnerHeadBias:
      return {H, 1, d};
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

// Whether a regular (non-prime) block of model m has the parameter: the ones its forward reads.
// (The official TTT-E2E code creates q/k norms and post-norms even when they are off; none of its
// configurations turns them off.)
bool present(Needs needs, const ModelConfig& m) {
  const bool ttt = is_ttt_layer(m.seq_modeling_block);
  switch (needs) {
    case Needs::kAll:
      return true;
    case Needs::kQkNorm:
      return !ttt && m.qk_norm;
    case Needs::kKeyProjection:
      return !ttt || !is_ttt_mamba_backbone(m.seq_modeling_block);
    case Needs::kPostNorm:
      return m.post_norm;
    case Needs::kTtt:
      return ttt;
    case Needs::kTttMamba:
      return ttt && is_ttt_mamba_backbone(m.seq_modeling_block);
    case Needs::kTttMlp:
      return ttt && is_ttt_mlp(m.seq_modeling_block);
    case Needs::kPreConv:
      return m.pre_conv;
    case Needs::kPrime:
      return false;  // laid out separately, under h.prime_storage
  }
  return false;
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
      if (present(p.needs, m))
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

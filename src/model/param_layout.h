// The model's parameters as names and shapes, without allocating anything: used to build the
// weights, to bind them to the blocks, to count parameters (`ttt info`) for any size, and to select
// inner/outer parameters. Every name is declared once, in the table of param_layout.cpp.
//
// Names are dotted paths modelled on the official pytree paths, with the layer index the reference
// keeps as a stacked leading axis written out:
//   language_model.model.wte.weight                                        [V, D]
//   language_model.model.h.blocks.<i>.seq_modeling_block.{wq,wk,wv,wo}.weight [D, D] (stored [in, out])
//   language_model.model.h.blocks.<i>.seq_modeling_block.{q_norm,k_norm}.weight [d]
//   language_model.model.h.blocks.<i>.{seq_norm,seq_post_norm,ffn_norm,ffn_post_norm}.weight [D]
//   language_model.model.h.blocks.<i>.feed_forward.{w1,w3}.weight [D, I], w2 [I, D]
//   TTT-layer blocks (seq_modeling_block ttt_*) instead of q_norm/k_norm (and wk in the Mamba backbone):
//   language_model.model.h.blocks.<i>.seq_modeling_block.wg.weight [D, D]           (Mamba backbone)
//   language_model.model.h.blocks.<i>.seq_modeling_block.{conv_q,conv_k}.{weight [K, D], bias [D]} (Mamba)
//   language_model.model.h.blocks.<i>.seq_modeling_block.learnable_ttt_lr.{weight [H, D], bias [H]}
//   language_model.model.h.blocks.<i>.seq_modeling_block.learnable_token_idx [b]
//   language_model.model.h.blocks.<i>.seq_modeling_block.ttt_norm.{weight,bias} [H, d]
//   language_model.model.h.blocks.<i>.seq_modeling_block.post_norm.{weight,bias} [D]
//   language_model.model.h.blocks.<i>.seq_modeling_block.ttt_{dense,bias}_0 [H, d, d'], [H, 1, d']
//   language_model.model.h.blocks.<i>.seq_modeling_block.ttt_{dense,bias}_1 [H, 4d, d], [H, 1, d] (TTT-MLP)
//   language_model.model.h.blocks.<i>.conv.{conv1.weight [K, D], conv1.bias [D], conv_norm.weight [D]} (pre_conv)
//   (q_norm and k_norm only with model.qk_norm, seq_post_norm and ffn_post_norm only with model.post_norm)
//   language_model.model.h.prime_storage.<j>.feed_forward_prime.{w1,w2,w3}.weight   (j < suffix_len)
//   language_model.model.h.prime_storage.<j>.{ffn_prime_norm,ffn_prime_post_norm}.weight
//   language_model.model.ln_f.weight [D]
//   language_model.lm_head.weight [D, output_size]   (only without tied embeddings)
// The split view (the reference's prefix/suffix model, which spec_inner is matched against) names
// block i `h.prefix_blocks.<i>` or `h.suffix_blocks.<j>` (j = i - (L - suffix_len)), and puts the
// prime MLP of suffix block j inside it: `h.suffix_blocks.<j>.feed_forward_prime.w1.weight`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace ttt {

// kNormal: N(0, initializer_range); kLecunNormal: flax's lecun_normal (a normal truncated to two
// standard deviations, scaled to variance 1 / fan_in), the official TTT layers' convolution kernels.
enum class ParamInit { kNormal, kOnes, kZeros, kLecunNormal };

// The members of a block, one per parameter of the table; BlockWeights::slot() binds each to the
// member the forward functions read.
enum class BlockSlot {
  kWq,
  kWk,
  kWv,
  kWo,
  kQNorm,
  kKNorm,
  kSeqNorm,
  kSeqPostNorm,
  kFfnNorm,
  kFfnPostNorm,
  kFfnW1,
  kFfnW2,
  kFfnW3,
  // TTT-layer blocks (seq_modeling_block ttt_*): the layer's own parameters, and the pre-convolution.
  kWg,
  kConvQWeight,
  kConvQBias,
  kConvKWeight,
  kConvKBias,
  kTttLrGateWeight,
  kTttLrGateBias,
  kTttTokenIdx,
  kTttNormWeight,
  kTttNormBias,
  kTttPostNormWeight,
  kTttPostNormBias,
  kTttW1,
  kTttB1,
  kTttW2,
  kTttB2,
  kPreConvWeight,
  kPreConvBias,
  kPreConvNorm,
  kPrimeW1,
  kPrimeW2,
  kPrimeW3,
  kPrimeNorm,
  kPrimePostNorm,
};
inline constexpr int kNumBlockSlots = 37;

struct ParamSpec {
  std::string name;        // canonical path (see above)
  std::string split_name;  // the path in the reference's prefix/suffix split view (spec_inner is matched on it)
  std::vector<int64_t> shape;
  ParamInit init = ParamInit::kNormal;
  int64_t layer = -1;               // the block it belongs to (0-based over all layers); -1: wte, ln_f, lm_head
  BlockSlot slot = BlockSlot::kWq;  // its member in that block (layer >= 0)
  int64_t numel() const;
};

// Every parameter, in the order weights are drawn and stored.
std::vector<ParamSpec> param_layout(const ModelConfig& model);

// The index of the first suffix block: num_hidden_layers - suffix_len.
inline int64_t first_suffix_layer(const ModelConfig& model) { return model.num_hidden_layers - model.suffix_len; }

// The name of a block parameter relative to its block ("feed_forward_prime.w1.weight").
const char* block_param_name(BlockSlot slot);

// Whether a slot belongs to a suffix block's prime MLP (stored under h.prime_storage.<j>).
bool is_prime_slot(BlockSlot slot);

// The stored names' prefixes of block parameters and of prime-MLP parameters (the block or
// suffix index follows).
inline constexpr const char* kBlocksPrefix = "language_model.model.h.blocks.";
inline constexpr const char* kPrimeStoragePrefix = "language_model.model.h.prime_storage.";

struct ParamCounts {
  int64_t total = 0;
  int64_t embedding = 0;      // wte (and an untied lm_head)
  int64_t non_embedding = 0;  // total - embedding
  int64_t inner = 0;          // selected by training.spec_inner (meta mode), else 0
  int64_t outer = 0;          // selected by training.spec_outer
};

// Throws ConfigError when a spec matches nothing (as the reference's filter asserts).
ParamCounts count_params(const Config& config);

}  // namespace ttt

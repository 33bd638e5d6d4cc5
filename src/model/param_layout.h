// The model's parameters as names and shapes, without allocating anything: used to build the
// weights, to count parameters (`ttt info`) for any size, and to select inner/outer parameters.
//
// Names are dotted paths modelled on the official pytree paths, with the layer index the reference
// keeps as a stacked leading axis written out:
//   language_model.model.wte.weight                                        [V, D]
//   language_model.model.h.blocks.<i>.seq_modeling_block.{wq,wk,wv,wo}.weight [D, D] (stored [in, out])
//   language_model.model.h.blocks.<i>.seq_modeling_block.{q_norm,k_norm}.weight [d]
//   language_model.model.h.blocks.<i>.{seq_norm,seq_post_norm,ffn_norm,ffn_post_norm}.weight [D]
//   language_model.model.h.blocks.<i>.feed_forward.{w1,w3}.weight [D, I], w2 [I, D]
//   language_model.model.h.prime_storage.<j>.feed_forward_prime.{w1,w2,w3}.weight   (j < suffix_len)
//   language_model.model.h.prime_storage.<j>.{ffn_prime_norm,ffn_prime_post_norm}.weight
//   language_model.model.ln_f.weight [D]
//   language_model.lm_head.weight [D, output_size]   (only without tied embeddings)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace ttt {

enum class ParamInit { kNormal, kOnes };

struct ParamSpec {
  std::string name;        // canonical path (see above)
  std::string split_name;  // the path in the reference's prefix/suffix split view (spec_inner is matched on it)
  std::vector<int64_t> shape;
  ParamInit init = ParamInit::kNormal;
  int64_t numel() const;
};

std::vector<ParamSpec> param_layout(const ModelConfig& model);

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

// The official implementation's parameter layout: its pytree keeps the parameters of all blocks
// stacked along a leading layer axis (and the prime MLPs of the suffix blocks along a leading
// suffix axis), where ours names one tensor per block (param_layout.h):
//   language_model.model.h.blocks.<name>              [L, ...]  <->  h.blocks.<i>.<name>
//   language_model.model.h.prime_storage.<name>       [S, ...]  <->  h.prime_storage.<j>.<name>
//   wte, ln_f, lm_head                                 unchanged
// Matrices are [in, out] in both. Used by the golden tests (tests/golden) and by checkpoint
// interop with the official code.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "model/weights.h"

namespace ttt {

// The official name of one of our parameters and its index along the stacked axis (-1: none).
std::pair<std::string, int64_t> official_param_name(const ParamSpec& spec, const ModelConfig& cfg);

// Our weights as the official pytree's leaves, in a stable order, stacked: copies, detached.
std::vector<std::pair<std::string, torch::Tensor>> to_official_layout(const ModelConfig& cfg, const ModelWeights& w);

// Our weights (in `dtype`, on the CPU) from the official leaves. Every leaf the configuration
// needs must be present with its exact stacked shape, and no other may be, and every value must be
// floating-point and finite (copy_named_tensors): otherwise a std::runtime_error names `source`
// and the first offending leaf.
ModelWeights from_official_layout(const ModelConfig& cfg, const std::map<std::string, torch::Tensor>& leaves,
                                  torch::ScalarType dtype, const std::string& source);

}  // namespace ttt

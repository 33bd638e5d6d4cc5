// The model's parameters: one tensor per entry of param_layout(), in that order, plus typed views
// of one block for the forward functions. Views hold tensor handles (no copies), and a view's
// members can be swapped for per-sequence fast weights without touching the stored parameters.
#pragma once

#include <torch/torch.h>

#include <array>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/attention.h"
#include "model/param_layout.h"
#include "model/ttt_layer.h"

namespace ttt {

struct MlpWeights {
  torch::Tensor w1, w2, w3;  // [D, I], [I, D], [D, I] (or with a leading batch axis)
};

struct BlockWeights {
  AttentionWeights attn;
  torch::Tensor seq_norm, seq_post_norm, ffn_norm, ffn_post_norm;
  MlpWeights ffn;
  bool has_prime = false;
  MlpWeights prime;
  torch::Tensor prime_norm, prime_post_norm;
  // TTT-layer blocks: the layer's parameters other than wq, wk, wv, wo (which are attn's), and
  // the pre-convolution (model.pre_conv).
  TttLayerWeights ttt;
  torch::Tensor pre_conv_weight, pre_conv_bias, pre_conv_norm;  // [K, D], [D], [D]

  // The member that holds the parameter of this slot (param_layout.h).
  torch::Tensor& slot(BlockSlot slot);
};

class ModelWeights {
 public:
  ModelWeights() = default;
  // N(0, initializer_range) for matrices, ones for norm scales, drawn in layout order from a
  // generator seeded with `seed` on the CPU (so every device gets the same initial weights).
  static ModelWeights initialize(const ModelConfig& cfg, uint64_t seed, torch::ScalarType dtype = torch::kFloat32,
                                 torch::Device device = torch::kCPU);
  // Zeros of the right shapes (for loading into).
  static ModelWeights zeros(const ModelConfig& cfg, torch::ScalarType dtype, torch::Device device);

  const std::vector<ParamSpec>& layout() const { return layout_; }
  std::vector<torch::Tensor>& tensors() { return tensors_; }
  const std::vector<torch::Tensor>& tensors() const { return tensors_; }
  const torch::Tensor& get(const std::string& name) const;
  size_t index_of(const std::string& name) const;

  torch::Tensor wte() const { return tensors_[wte_]; }
  torch::Tensor ln_f() const { return tensors_[ln_f_]; }
  torch::Tensor lm_head() const { return lm_head_ >= 0 ? tensors_[lm_head_] : torch::Tensor(); }
  // The width of the logits: lm_head's output size, or the vocabulary with tied embeddings.
  int64_t output_width() const { return lm_head_ >= 0 ? tensors_[lm_head_].size(1) : tensors_[wte_].size(0); }
  // Block i (0-based over all layers); suffix blocks of a prime model include their prime MLP.
  BlockWeights block(int64_t i) const;
  // Whether a parameter of block i requires grad.
  bool block_requires_grad(int64_t i) const;

  void set_requires_grad(bool on);
  ModelWeights to(torch::ScalarType dtype) const;  // differentiable cast (no copy for the same dtype)
  ModelWeights clone() const;                      // deep copy, detached

 private:
  void index_layout(const ModelConfig& cfg);
  std::vector<ParamSpec> layout_;
  std::vector<torch::Tensor> tensors_;
  std::map<std::string, size_t> by_name_;
  // Layout index of every (layer, slot); -1 where the block has no such parameter.
  std::vector<std::array<int64_t, kNumBlockSlots>> block_params_;
  size_t wte_ = 0, ln_f_ = 0;
  int64_t lm_head_ = -1;
};

// Copies tensors named with our parameter names into `weights` (converting their dtype): every
// parameter must be there, floating-point, finite and of its shape, and no other name may be;
// otherwise a std::runtime_error names `source` and the tensor. Checkpoints and the official
// layout (model/official_layout.h) load through it.
void copy_named_tensors(std::map<std::string, torch::Tensor> named, ModelWeights& weights, const std::string& source);

}  // namespace ttt

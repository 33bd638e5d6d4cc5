#include "model/weights.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <stdexcept>

#include "util/safetensors.h"

namespace ttt {
namespace {

// flax's lecun_normal for a kernel whose first axis is its fan-in (a depthwise convolution's taps):
// N(0, 1) truncated to [-2, 2] by the inverse CDF of a uniform draw, as jax.random.truncated_normal
// draws it, times sqrt(1 / fan_in) / 0.87962566 (the truncated normal's standard deviation).
torch::Tensor lecun_normal(const std::vector<int64_t>& shape, at::Generator& gen) {
  const double cdf_low = 0.5 * std::erfc(2.0 / std::sqrt(2.0));  // Phi(-2)
  auto u = torch::empty(shape, torch::kFloat64).uniform_(cdf_low, 1.0 - cdf_low, gen);
  const double scale = std::sqrt(1.0 / static_cast<double>(shape[0])) / 0.87962566103423978;
  return (std::sqrt(2.0) * torch::erfinv(2.0 * u - 1.0) * scale).to(torch::kFloat32);
}

}  // namespace

torch::Tensor& BlockWeights::slot(BlockSlot s) {
  switch (s) {
    case BlockSlot::kWq:
      return attn.wq;
    case BlockSlot::kWk:
      return attn.wk;
    case BlockSlot::kWv:
      return attn.wv;
    case BlockSlot::kWo:
      return attn.wo;
    case BlockSlot::kQNorm:
      return attn.q_norm;
    case BlockSlot::kKNorm:
      return attn.k_norm;
    case BlockSlot::kSeqNorm:
      return seq_norm;
    case BlockSlot::kSeqPostNorm:
      return seq_post_norm;
    case BlockSlot::kFfnNorm:
      return ffn_norm;
    case BlockSlot::kFfnPostNorm:
      return ffn_post_norm;
    case BlockSlot::kFfnW1:
      return ffn.w1;
    case BlockSlot::kFfnW2:
      return ffn.w2;
    case BlockSlot::kFfnW3:
      return ffn.w3;
    case BlockSlot::kWg:
      return ttt.wg;
    case BlockSlot::kConvQWeight:
      return ttt.conv_q_weight;
    case BlockSlot::kConvQBias:
      return ttt.conv_q_bias;
    case BlockSlot::kConvKWeight:
      return ttt.conv_k_weight;
    case BlockSlot::kConvKBias:
      return ttt.conv_k_bias;
    case BlockSlot::kTttLrGateWeight:
      return ttt.lr_gate_weight;
    case BlockSlot::kTttLrGateBias:
      return ttt.lr_gate_bias;
    case BlockSlot::kTttTokenIdx:
      return ttt.learnable_token_idx;
    case BlockSlot::kTttNormWeight:
      return ttt.ttt_norm_weight;
    case BlockSlot::kTttNormBias:
      return ttt.ttt_norm_bias;
    case BlockSlot::kTttPostNormWeight:
      return ttt.post_norm_weight;
    case BlockSlot::kTttPostNormBias:
      return ttt.post_norm_bias;
    case BlockSlot::kTttW1:
      return ttt.w1;
    case BlockSlot::kTttB1:
      return ttt.b1;
    case BlockSlot::kTttW2:
      return ttt.w2;
    case BlockSlot::kTttB2:
      return ttt.b2;
    case BlockSlot::kPreConvWeight:
      return pre_conv_weight;
    case BlockSlot::kPreConvBias:
      return pre_conv_bias;
    case BlockSlot::kPreConvNorm:
      return pre_conv_norm;
    case BlockSlot::kPrimeW1:
      return prime.w1;
    case BlockSlot::kPrimeW2:
      return prime.w2;
    case BlockSlot::kPrimeW3:
      return prime.w3;
    case BlockSlot::kPrimeNorm:
      return prime_norm;
    case BlockSlot::kPrimePostNorm:
      return prime_post_norm;
  }
  throw std::logic_error("unknown block slot");
}

void ModelWeights::index_layout(const ModelConfig& cfg) {
  layout_ = param_layout(cfg);
  by_name_.clear();
  block_params_.assign(cfg.num_hidden_layers, {});
  for (auto& slots : block_params_) slots.fill(-1);
  for (size_t i = 0; i < layout_.size(); ++i) {
    by_name_[layout_[i].name] = i;
    if (layout_[i].layer >= 0)
      block_params_[layout_[i].layer][static_cast<int>(layout_[i].slot)] = static_cast<int64_t>(i);
  }
  wte_ = by_name_.at("language_model.model.wte.weight");
  ln_f_ = by_name_.at("language_model.model.ln_f.weight");
  auto it = by_name_.find("language_model.lm_head.weight");
  lm_head_ = it == by_name_.end() ? -1 : static_cast<int64_t>(it->second);
}

ModelWeights ModelWeights::initialize(const ModelConfig& cfg, uint64_t seed, torch::ScalarType dtype,
                                      torch::Device device) {
  ModelWeights w;
  w.index_layout(cfg);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto cpu = torch::TensorOptions().dtype(torch::kFloat32);
  for (const auto& spec : w.layout_) {
    torch::Tensor t;
    switch (spec.init) {
      case ParamInit::kNormal:
        t = at::normal(0.0, cfg.initializer_range, spec.shape, gen, cpu);
        break;
      case ParamInit::kOnes:
        t = torch::ones(spec.shape, cpu);
        break;
      case ParamInit::kZeros:
        t = torch::zeros(spec.shape, cpu);
        break;
      case ParamInit::kLecunNormal:
        t = lecun_normal(spec.shape, gen);
        break;
    }
    w.tensors_.push_back(t.to(device, dtype));
  }
  return w;
}

ModelWeights ModelWeights::zeros(const ModelConfig& cfg, torch::ScalarType dtype, torch::Device device) {
  ModelWeights w;
  w.index_layout(cfg);
  for (const auto& spec : w.layout_)
    w.tensors_.push_back(torch::zeros(spec.shape, torch::TensorOptions().dtype(dtype).device(device)));
  return w;
}

size_t ModelWeights::index_of(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) throw std::invalid_argument("model has no parameter '" + name + "'");
  return it->second;
}

const torch::Tensor& ModelWeights::get(const std::string& name) const { return tensors_[index_of(name)]; }

BlockWeights ModelWeights::block(int64_t i) const {
  BlockWeights b;
  for (int s = 0; s < kNumBlockSlots; ++s) {
    const int64_t index = block_params_[i][s];
    if (index >= 0) b.slot(static_cast<BlockSlot>(s)) = tensors_[index];
  }
  b.has_prime = block_params_[i][static_cast<int>(BlockSlot::kPrimeW1)] >= 0;
  return b;
}

bool ModelWeights::block_requires_grad(int64_t i) const {
  for (const int64_t index : block_params_[i])
    if (index >= 0 && tensors_[index].requires_grad()) return true;
  return false;
}

void ModelWeights::set_requires_grad(bool on) {
  for (auto& t : tensors_) t.requires_grad_(on);
}

ModelWeights ModelWeights::to(torch::ScalarType dtype) const {
  ModelWeights w = *this;
  for (auto& t : w.tensors_) t = t.to(dtype);
  return w;
}

ModelWeights ModelWeights::clone() const {
  ModelWeights w = *this;
  for (auto& t : w.tensors_) t = t.detach().clone();
  return w;
}

void copy_named_tensors(std::map<std::string, torch::Tensor> named, ModelWeights& weights, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < weights.layout().size(); ++i) {
    const auto& spec = weights.layout()[i];
    auto it = named.find(spec.name);
    if (it == named.end()) throw std::runtime_error(source + ": no tensor '" + spec.name + "' (the model needs it)");
    const torch::Tensor& t = it->second;
    if (!t.is_floating_point())
      throw std::runtime_error(source + ": tensor '" + spec.name + "' is " + safetensors_dtype_name(t.scalar_type()) +
                               ", not floating-point");
    if (t.sizes().vec() != spec.shape)
      throw std::runtime_error(source + ": tensor '" + spec.name + "' has shape " + c10::str(t.sizes()) +
                               ", the model expects " + c10::str(c10::IntArrayRef(spec.shape)));
    if (!torch::isfinite(t).all().item<bool>())
      throw std::runtime_error(source + ": tensor '" + spec.name + "' holds non-finite values");
    weights.tensors()[i].copy_(t);
    named.erase(it);
  }
  if (!named.empty())
    throw std::runtime_error(source + ": tensor '" + named.begin()->first + "' is not a parameter of this model");
}

}  // namespace ttt

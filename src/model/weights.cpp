#include "model/weights.h"

#include <ATen/CPUGeneratorImpl.h>

namespace ttt {

torch::Tensor& BlockWeights::member(const std::string& n) {
  if (n == "seq_modeling_block.wq.weight") return attn.wq;
  if (n == "seq_modeling_block.wk.weight") return attn.wk;
  if (n == "seq_modeling_block.wv.weight") return attn.wv;
  if (n == "seq_modeling_block.wo.weight") return attn.wo;
  if (n == "seq_modeling_block.q_norm.weight") return attn.q_norm;
  if (n == "seq_modeling_block.k_norm.weight") return attn.k_norm;
  if (n == "seq_norm.weight") return seq_norm;
  if (n == "seq_post_norm.weight") return seq_post_norm;
  if (n == "ffn_norm.weight") return ffn_norm;
  if (n == "ffn_post_norm.weight") return ffn_post_norm;
  if (n == "feed_forward.w1.weight") return ffn.w1;
  if (n == "feed_forward.w2.weight") return ffn.w2;
  if (n == "feed_forward.w3.weight") return ffn.w3;
  if (has_prime) {
    if (n == "feed_forward_prime.w1.weight") return prime.w1;
    if (n == "feed_forward_prime.w2.weight") return prime.w2;
    if (n == "feed_forward_prime.w3.weight") return prime.w3;
    if (n == "ffn_prime_norm.weight") return prime_norm;
    if (n == "ffn_prime_post_norm.weight") return prime_post_norm;
  }
  throw std::invalid_argument("block has no parameter '" + n + "'");
}

void ModelWeights::index_layout(const ModelConfig& cfg) {
  layout_ = param_layout(cfg);
  num_layers_ = cfg.num_hidden_layers;
  suffix_len_ = cfg.suffix_len;
  prime_ = cfg.prime;
  by_name_.clear();
  for (size_t i = 0; i < layout_.size(); ++i) by_name_[layout_[i].name] = i;
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
    torch::Tensor t = spec.init == ParamInit::kOnes
                          ? torch::ones(spec.shape, cpu)
                          : at::normal(0.0, cfg.initializer_range, spec.shape, gen, cpu);
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
  const std::string p = "language_model.model.h.blocks." + std::to_string(i) + ".";
  BlockWeights b;
  for (const char* n : {"seq_modeling_block.wq.weight", "seq_modeling_block.wk.weight",
                        "seq_modeling_block.wv.weight", "seq_modeling_block.wo.weight",
                        "seq_modeling_block.q_norm.weight", "seq_modeling_block.k_norm.weight", "seq_norm.weight",
                        "seq_post_norm.weight", "ffn_norm.weight", "ffn_post_norm.weight",
                        "feed_forward.w1.weight", "feed_forward.w2.weight", "feed_forward.w3.weight"})
    b.member(n) = get(p + n);
  const int64_t j = i - (num_layers_ - suffix_len_);
  if (prime_ && j >= 0) {
    b.has_prime = true;
    const std::string s = "language_model.model.h.prime_storage." + std::to_string(j) + ".";
    for (const char* n : {"feed_forward_prime.w1.weight", "feed_forward_prime.w2.weight",
                          "feed_forward_prime.w3.weight", "ffn_prime_norm.weight", "ffn_prime_post_norm.weight"})
      b.member(n) = get(s + n);
  }
  return b;
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

}  // namespace ttt

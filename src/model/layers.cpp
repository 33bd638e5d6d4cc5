#include "model/layers.h"

#include "config/config.h"

namespace ttt {

namespace {
torch::ScalarType accum_type(const torch::Tensor& x) {
  return x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}
}  // namespace

torch::ScalarType dtype_from_name(const std::string& name) {
  if (name == "fp32" || name == "float32") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "fp64" || name == "float64") return torch::kFloat64;
  throw ConfigError("unknown dtype '" + name + "' (expected fp32 or bf16)");
}

torch::Tensor broadcast_weight(const torch::Tensor& w, const torch::Tensor& x) {
  if (w.dim() == 1) return w;
  // [B, rest] -> [B, 1, ..., 1, rest] to line up with x [B, ..., rest].
  std::vector<int64_t> shape{w.size(0)};
  for (int64_t i = 0; i < x.dim() - 2; ++i) shape.push_back(1);
  shape.push_back(w.size(-1));
  return w.view(shape);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, torch::ScalarType compute) {
  // A float64 model stays float64 (finite-difference tests); otherwise cast to the compute dtype.
  const auto dtype = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : compute;
  return torch::matmul(x.to(dtype), w.to(dtype));
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& scale, double eps) {
  const auto acc = accum_type(x);
  auto xf = x.to(acc);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return (normed * broadcast_weight(scale, x).to(acc)).to(x.scalar_type());
}

torch::Tensor swiglu(const torch::Tensor& x, const torch::Tensor& w1, const torch::Tensor& w2,
                     const torch::Tensor& w3, torch::ScalarType compute) {
  auto gate = torch::silu(linear(x, w1, compute));
  return linear(gate * linear(x, w3, compute), w2, compute);
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta) {
  const auto acc = accum_type(x);
  const int64_t d = x.size(-1);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64).device(x.device());
  // Angles in float64, then rounded to the accumulation dtype: exact enough at 128K positions.
  auto inv_freq = torch::pow(theta, -torch::arange(0, d, 2, opts) / static_cast<double>(d));  // [d/2]
  auto angles = positions.to(opts).unsqueeze(1) * inv_freq.unsqueeze(0);                         // [T, d/2]
  auto cos = angles.cos().to(acc).view({1, -1, 1, d / 2});
  auto sin = angles.sin().to(acc).view({1, -1, 1, d / 2});
  auto pairs = x.to(acc).view({x.size(0), x.size(1), x.size(2), d / 2, 2});
  auto re = pairs.select(-1, 0), im = pairs.select(-1, 1);
  auto out = torch::stack({re * cos - im * sin, re * sin + im * cos}, -1);
  return out.view(x.sizes()).to(x.scalar_type());
}

}  // namespace ttt

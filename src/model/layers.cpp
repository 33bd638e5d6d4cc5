#include "model/layers.h"

namespace ttt {

torch::ScalarType scalar_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return torch::kFloat32;
    case DType::kBFloat16:
      return torch::kBFloat16;
  }
  throw std::logic_error("unknown dtype");
}

torch::ScalarType accumulation_dtype(torch::ScalarType input) {
  return input == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

torch::ScalarType compute_dtype(const torch::Tensor& x, DType compute) {
  return x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : scalar_type(compute);
}

torch::Tensor broadcast_weight(const torch::Tensor& w, const torch::Tensor& x) {
  if (w.dim() == 1) return w;
  // [B, rest] -> [B, 1, ..., 1, rest] to line up with x [B, ..., rest].
  std::vector<int64_t> shape{w.size(0)};
  for (int64_t i = 0; i < x.dim() - 2; ++i) shape.push_back(1);
  shape.push_back(w.size(-1));
  return w.view(shape);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, DType compute) {
  const auto dtype = compute_dtype(x, compute);
  return torch::matmul(x.to(dtype), w.to(dtype));
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& scale, double eps) {
  const auto acc = accumulation_dtype(x);
  auto xf = x.to(acc);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return (normed * broadcast_weight(scale, x).to(acc)).to(x.scalar_type());
}

torch::Tensor swiglu(const torch::Tensor& x, const torch::Tensor& w1, const torch::Tensor& w2, const torch::Tensor& w3,
                     DType compute) {
  auto gate = torch::silu(linear(x, w1, compute));
  return linear(gate * linear(x, w3, compute), w2, compute);
}

RopeTable rope_table(int64_t head_dim, double theta, int64_t begin, int64_t end, torch::ScalarType acc,
                     torch::Device device, RopePrecision precision) {
  const bool fp32 = precision == RopePrecision::kFloat32;
  auto opts = torch::TensorOptions().dtype(fp32 ? torch::kFloat32 : torch::kFloat64).device(device);
  torch::Tensor inv_freq;  // [d/2]
  if (fp32) {
    // The reference's float32 frequencies 1 / theta^(2i/d): the exponent and the reciprocal in
    // float32, the power rounded to float32. The power is taken in float64, so that CPU and CUDA
    // round it to the same float32 (float32 pow differs by an ulp between libraries, and an ulp of
    // frequency is ~1e-2 rad of angle at 128K). All on `device`: a host copy here would wait on
    // the device in every attention call.
    auto exponents = torch::arange(0, head_dim, 2, opts) / static_cast<double>(head_dim);
    auto powers = torch::pow(theta, exponents.to(torch::kFloat64)).to(torch::kFloat32);
    inv_freq = 1.0 / powers;
  } else {
    inv_freq = torch::pow(theta, -torch::arange(0, head_dim, 2, opts) / static_cast<double>(head_dim));
  }
  auto positions = torch::arange(begin, end, torch::TensorOptions().dtype(torch::kInt64).device(device));
  auto angles = positions.to(opts).unsqueeze(1) * inv_freq.unsqueeze(0);  // [T, d/2]
  return RopeTable{angles.cos().to(acc), angles.sin().to(acc), begin, end};
}

torch::Tensor apply_rope(const torch::Tensor& x, const RopeTable& table, int64_t first) {
  const int64_t T = x.size(1), d = x.size(-1);
  TORCH_CHECK(first >= table.begin && first + T <= table.end, "RoPE table [", table.begin, ", ", table.end,
              ") does not cover positions [", first, ", ", first + T, ")");
  const auto acc = table.cos.scalar_type();
  auto cos = table.cos.slice(0, first - table.begin, first - table.begin + T).view({1, T, 1, d / 2});
  auto sin = table.sin.slice(0, first - table.begin, first - table.begin + T).view({1, T, 1, d / 2});
  auto pairs = x.to(acc).view({x.size(0), T, x.size(2), d / 2, 2});
  auto re = pairs.select(-1, 0), im = pairs.select(-1, 1);
  auto out = torch::stack({re * cos - im * sin, re * sin + im * cos}, -1);
  return out.view(x.sizes()).to(x.scalar_type());
}

}  // namespace ttt

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
  // One row (a decoded token) without a graph: a matrix-vector product. A matrix product of one
  // row packs the whole weight first, which costs 2-4x the product itself on the CPU BLAS
  // (OpenBLAS 0.3.21: 28.6 vs 10-15 us at 256x256, 537 vs 95-117 us at 768x3072, 1 thread).
  // Only without a graph, so that training and the inner loop keep their kernels (and bits).
  const bool one_row = x.numel() == x.size(-1) && (w.dim() == 2 || (w.size(0) == 1 && x.dim() >= w.dim()));
  if (one_row && !torch::GradMode::is_enabled() && (dtype == torch::kFloat32 || dtype == torch::kFloat64)) {
    const auto matrix = (w.dim() == 2 ? w : w[0]).to(dtype);
    auto sizes = x.sizes().vec();
    sizes.back() = matrix.size(1);
    return torch::mv(matrix.t(), x.to(dtype).reshape({-1})).view(sizes);
  }
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
  const auto cos = angles.cos().to(acc), sin = angles.sin().to(acc);
  return RopeTable{torch::stack({cos, cos}, -1).view({end - begin, head_dim}),
                   torch::stack({-sin, sin}, -1).view({end - begin, head_dim}), begin, end};
}

namespace {

// x [B, T, H, d], contiguous -> (re cos + im (-sin), im cos + re sin) for every pair (re, im):
// each element the same two rounded products and one rounded sum as re cos - im sin and
// re sin + im cos, so the same bits as pairwise arithmetic, in passes over contiguous memory
// instead of strided ones.
torch::Tensor rotate_pairs(const torch::Tensor& x, const torch::Tensor& cos_pairs, const torch::Tensor& sin_pairs) {
  const auto swapped = x.view({x.size(0), x.size(1), x.size(2), x.size(3) / 2, 2}).flip(-1).view(x.sizes());
  return x * cos_pairs + swapped * sin_pairs;
}

// The rotation as one autograd node whose gradient is the inverse rotation (by -sin) of the
// incoming gradient made contiguous, itself such a node (gradients of gradients for the
// meta-gradient). Left to autograd, the products' gradients would keep the layout of the incoming
// gradient (attention's backward hands over transposed ones), and the norms' weight gradients
// below, reductions over that layout, would change in the last bits with it.
struct PairRotation : torch::autograd::Function<PairRotation> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos_pairs, const torch::Tensor& sin_pairs) {
    ctx->saved_data["cos"] = cos_pairs;
    ctx->saved_data["sin"] = sin_pairs;
    return rotate_pairs(x, cos_pairs, sin_pairs);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto cos_pairs = ctx->saved_data["cos"].toTensor(), sin_pairs = ctx->saved_data["sin"].toTensor();
    return {PairRotation::apply(grads[0].contiguous(), cos_pairs, -sin_pairs), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor apply_rope(const torch::Tensor& x, const RopeTable& table, int64_t first) {
  const int64_t T = x.size(1), d = x.size(-1);
  TORCH_CHECK(first >= table.begin && first + T <= table.end, "RoPE table [", table.begin, ", ", table.end,
              ") does not cover positions [", first, ", ", first + T, ")");
  const auto acc = table.cos_pairs.scalar_type();
  auto cos = table.cos_pairs.slice(0, first - table.begin, first - table.begin + T).view({1, T, 1, d});
  auto sin = table.sin_pairs.slice(0, first - table.begin, first - table.begin + T).view({1, T, 1, d});
  return PairRotation::apply(x.to(acc).contiguous(), cos, sin).to(x.scalar_type());
}

}  // namespace ttt

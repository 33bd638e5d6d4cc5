// The TTT-Linear / TTT-MLP layer (model/ttt_layer): its dual form against an independent per-token
// form that materialises every token's inner weights and takes each inner gradient by autograd
// (float64, both inner models, both backbones, partial mini-batches and a clipped token scale);
// any split of the sequence into calls (token by token: the recurrent form) gives the same
// outputs; gradients of the outer weights against central finite differences.
#include <gtest/gtest.h>

#include <vector>

#include "model/layers.h"
#include "model/ttt_layer.h"

using namespace ttt;

namespace {

constexpr int64_t kBatch = 2, kHidden = 8, kHeads = 2, kHeadDim = 4, kMini = 4, kWidth = 4;

struct Variant {
  TttInnerModel inner;
  bool mamba;
  const char* name;
};
const Variant kVariants[] = {{TttInnerModel::kLinear, false, "linear"},
                             {TttInnerModel::kMlp, false, "mlp"},
                             {TttInnerModel::kLinear, true, "linear-mamba"},
                             {TttInnerModel::kMlp, true, "mlp-mamba"}};

TttLayerOptions options(const Variant& v) {
  TttLayerOptions o;
  o.inner = v.inner;
  o.mamba_backbone = v.mamba;
  o.num_heads = kHeads;
  o.mini_batch_size = kMini;
  o.base_lr = v.inner == TttInnerModel::kLinear ? 1.0 : 0.5;
  o.lr_mult = 0.75;
  o.rope_precision = RopePrecision::kFloat64;
  return o;
}

// Float64 weights large enough that the inner steps change the outputs visibly.
TttLayerWeights weights(const Variant& v, uint64_t seed) {
  torch::manual_seed(seed);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  auto normal = [&](std::vector<int64_t> shape, double std) { return torch::randn(shape, opts) * std; };
  TttLayerWeights w;
  w.wq = normal({kHidden, kHidden}, 0.5);
  w.wv = normal({kHidden, kHidden}, 0.5);
  w.wo = normal({kHidden, kHidden}, 0.5);
  if (v.mamba) {
    w.wg = normal({kHidden, kHidden}, 0.5);
    w.conv_q_weight = normal({kWidth, kHidden}, 0.5);
    w.conv_q_bias = normal({kHidden}, 0.1);
    w.conv_k_weight = normal({kWidth, kHidden}, 0.5);
    w.conv_k_bias = normal({kHidden}, 0.1);
  } else {
    w.wk = normal({kHidden, kHidden}, 0.5);
  }
  w.lr_gate_weight = normal({kHeads, kHidden}, 0.5);
  w.lr_gate_bias = normal({kHeads}, 0.5);
  // Position 2's scale 1/3 - 0.5 is clipped to 0.
  w.learnable_token_idx = torch::tensor({0.1, -0.2, -0.5, 0.05}, opts);
  w.ttt_norm_weight = 1 + normal({kHeads, kHeadDim}, 0.2);
  w.ttt_norm_bias = normal({kHeads, kHeadDim}, 0.2);
  w.post_norm_weight = 1 + normal({kHidden}, 0.2);
  w.post_norm_bias = normal({kHidden}, 0.2);
  const int64_t inner_width = v.inner == TttInnerModel::kLinear ? kHeadDim : 4 * kHeadDim;
  w.w1 = normal({kHeads, kHeadDim, inner_width}, 0.5);
  w.b1 = normal({kHeads, 1, inner_width}, 0.2);
  if (v.inner == TttInnerModel::kMlp) {
    w.w2 = normal({kHeads, inner_width, kHeadDim}, 0.5);
    w.b2 = normal({kHeads, 1, kHeadDim}, 0.2);
  }
  return w;
}

std::vector<torch::Tensor*> all_tensors(TttLayerWeights& w) {
  std::vector<torch::Tensor*> out;
  for (torch::Tensor* t : {&w.wq,
                           &w.wk,
                           &w.wv,
                           &w.wo,
                           &w.wg,
                           &w.conv_q_weight,
                           &w.conv_q_bias,
                           &w.conv_k_weight,
                           &w.conv_k_bias,
                           &w.lr_gate_weight,
                           &w.lr_gate_bias,
                           &w.learnable_token_idx,
                           &w.ttt_norm_weight,
                           &w.ttt_norm_bias,
                           &w.post_norm_weight,
                           &w.post_norm_bias,
                           &w.w1,
                           &w.b1,
                           &w.w2,
                           &w.b2})
    if (t->defined()) out.push_back(t);
  return out;
}

torch::Tensor layer_norm_rows(const torch::Tensor& z, const torch::Tensor& scale, const torch::Tensor& bias) {
  const auto mean = z.mean(-1, true);
  const auto var = (z - mean).pow(2).mean(-1, true);
  return (z - mean) / torch::sqrt(var + 1e-6) * scale + bias;
}

// The inner model g(z; W) of one head, W = {w1, b1[, w2, b2]}.
torch::Tensor inner_model(const Variant& v, const torch::Tensor& z, const std::vector<torch::Tensor>& p) {
  auto h = torch::matmul(z, p[0]) + p[1];
  if (v.inner == TttInnerModel::kMlp) h = torch::matmul(torch::gelu(h, "tanh"), p[2]) + p[3];
  return h;
}

// The layer written token by token from its definition: every token's weights W_i materialised,
// every inner gradient by autograd, projections by conv1d and explicit rotation angles.
torch::Tensor reference_layer(const Variant& v, const TttLayerOptions& o, const TttLayerWeights& w,
                              const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  const int64_t n = x.size(1);
  auto depthwise = [&](const torch::Tensor& s, const torch::Tensor& kernel, const torch::Tensor& bias) {
    auto padded = F::pad(s.transpose(1, 2), F::PadFuncOptions({kWidth - 1, 0}));
    return F::conv1d(padded, kernel.t().unsqueeze(1), F::Conv1dFuncOptions().bias(bias).groups(kHidden))
        .transpose(1, 2);
  };
  torch::Tensor q, k;
  if (v.mamba) {
    const auto s = torch::matmul(x, w.wq);
    q = depthwise(s, w.conv_q_weight, w.conv_q_bias);
    k = depthwise(s, w.conv_k_weight, w.conv_k_bias);
  } else {
    q = torch::matmul(x, w.wq);
    k = torch::matmul(x, w.wk);
  }
  const auto val = torch::matmul(x, w.wv);
  auto rotate = [&](const torch::Tensor& head, int64_t position) {  // head [d], interleaved pairs
    auto out = head.clone();
    for (int64_t i = 0; i < kHeadDim / 2; ++i) {
      const double angle = static_cast<double>(position) * std::pow(o.rope_theta, -2.0 * i / kHeadDim);
      const auto x0 = head[2 * i], x1 = head[2 * i + 1];
      out[2 * i] = x0 * std::cos(angle) - x1 * std::sin(angle);
      out[2 * i + 1] = x0 * std::sin(angle) + x1 * std::cos(angle);
    }
    return out;
  };
  auto z = torch::zeros({x.size(0), n, kHidden}, x.options());
  for (int64_t bi = 0; bi < x.size(0); ++bi)
    for (int64_t h = 0; h < kHeads; ++h) {
      std::vector<torch::Tensor> state = {w.w1[h], w.b1[h]};
      if (v.inner == TttInnerModel::kMlp) state.insert(state.end(), {w.w2[h], w.b2[h]});
      std::vector<torch::Tensor> start, summed;
      for (int64_t t = 0; t < n; ++t) {
        const int64_t i = t % kMini;
        if (i == 0) {
          start = state;
          summed.assign(start.size(), torch::Tensor());
        }
        const auto cols = torch::indexing::Slice(h * kHeadDim, (h + 1) * kHeadDim);
        const auto qt = rotate(q.index({bi, t, cols}), i), kt = rotate(k.index({bi, t, cols}), i);
        const auto vt = val.index({bi, t, cols});
        const double a = torch::sigmoid(torch::dot(x[bi][t], w.lr_gate_weight[h]) + w.lr_gate_bias[h]).item<double>() *
                         o.base_lr * o.lr_mult / kHeadDim;
        const double tau = std::max(0.0, 1.0 / (i + 1) + w.learnable_token_idx[i].item<double>());
        std::vector<torch::Tensor> leaves;
        for (const auto& p : start) leaves.push_back(p.detach().requires_grad_(true));
        const auto loss =
            0.5 * (layer_norm_rows(inner_model(v, kt.unsqueeze(0), leaves), w.ttt_norm_weight[h], w.ttt_norm_bias[h]) -
                   (vt - kt))
                      .pow(2)
                      .sum();
        const auto grads = torch::autograd::grad({loss}, leaves);
        std::vector<torch::Tensor> current;
        for (size_t p = 0; p < start.size(); ++p) {
          summed[p] = summed[p].defined() ? summed[p] + a * grads[p] : a * grads[p];
          current.push_back(start[p] - tau * summed[p]);
        }
        const auto out =
            qt + layer_norm_rows(inner_model(v, qt.unsqueeze(0), current), w.ttt_norm_weight[h], w.ttt_norm_bias[h])
                     .squeeze(0);
        z.index_put_({bi, t, cols}, out);
        if (i == kMini - 1) state = current;
      }
    }
  auto y = layer_norm_rows(z, w.post_norm_weight, w.post_norm_bias);
  if (v.mamba) y = torch::gelu(torch::matmul(x, w.wg), "tanh") * y;
  return torch::matmul(y, w.wo);
}

torch::Tensor run_in_calls(const TttLayerOptions& o, const TttLayerWeights& w, const torch::Tensor& x,
                           const std::vector<int64_t>& lengths) {
  auto state = ttt_initial_state(o, w, x.size(0));
  std::vector<torch::Tensor> out;
  int64_t t = 0;
  for (int64_t len : lengths) {
    out.push_back(ttt_layer_forward(o, w, x.narrow(1, t, len), state));
    t += len;
  }
  EXPECT_EQ(t, x.size(1));
  EXPECT_EQ(state.position, x.size(1));
  return torch::cat(out, 1);
}

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

}  // namespace

TEST(TttLayer, DualFormEqualsTokenByTokenWeightsWithAutogradInnerGradients) {
  for (const Variant& v : kVariants) {
    const auto o = options(v);
    const auto w = weights(v, 3);
    const auto x = torch::randn({kBatch, 11, kHidden}, torch::kFloat64);  // 2 mini-batches of 4 and 3 tokens
    auto state = ttt_initial_state(o, w, kBatch);
    const auto ours = ttt_layer_forward(o, w, x, state);
    const auto reference = reference_layer(v, o, w, x);
    // The MLP's inner gradient uses the official gelu derivative with rounded constants (1e-9 relative).
    const double tol = v.inner == TttInnerModel::kLinear ? 1e-12 : 1e-8;
    EXPECT_LT(max_abs(ours - reference), tol * std::max(1.0, max_abs(reference))) << v.name;
    // Without the inner steps (W fixed at the initial weights) the outputs differ clearly.
    auto frozen = o;
    frozen.base_lr = 0;
    auto frozen_state = ttt_initial_state(frozen, w, kBatch);
    EXPECT_GT(max_abs(ttt_layer_forward(frozen, w, x, frozen_state) - reference), 1e-2) << v.name;
  }
}

TEST(TttLayer, AnySplitIntoCallsGivesTheSameOutputsTokenByTokenIsTheRecurrentForm) {
  for (const Variant& v : kVariants) {
    const auto o = options(v);
    const auto w = weights(v, 5);
    const auto x = torch::randn({kBatch, 13, kHidden}, torch::kFloat64);
    const auto whole = run_in_calls(o, w, x, {13});
    const auto split = run_in_calls(o, w, x, {3, 6, 1, 3});
    const auto tokens = run_in_calls(o, w, x, std::vector<int64_t>(13, 1));
    EXPECT_LT(max_abs(split - whole), 1e-12) << v.name;
    EXPECT_LT(max_abs(tokens - whole), 1e-12) << v.name;
    // The recurrent state stays the same size at any length.
    auto state = ttt_initial_state(o, w, kBatch);
    ttt_layer_forward(o, w, x, state);
    EXPECT_EQ(state.w1.sizes(), (std::vector<int64_t>{kBatch, kHeads, kHeadDim, w.w1.size(2)})) << v.name;
  }
}

TEST(TttLayer, OuterGradientsMatchCentralDifferencesFloat64) {
  for (const Variant& v : kVariants) {
    const auto o = options(v);
    auto w = weights(v, 7);
    const auto x = torch::randn({1, 9, kHidden}, torch::kFloat64);
    const auto probe = torch::randn({1, 9, kHidden}, torch::kFloat64);
    auto loss_of = [&](const TttLayerWeights& weights_now) {
      auto state = ttt_initial_state(o, weights_now, 1);
      return (ttt_layer_forward(o, weights_now, x, state) * probe).sum();
    };
    for (torch::Tensor* t : all_tensors(w)) t->requires_grad_(true);
    loss_of(w).backward();
    torch::NoGradGuard no_grad;
    for (torch::Tensor* t : all_tensors(w)) {
      const auto grad = t->grad().clone();
      auto flat = t->view({-1});
      for (int64_t i : {int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
        const double saved = flat[i].item<double>(), h = 1e-6;
        flat[i] = saved + h;
        const double up = loss_of(w).item<double>();
        flat[i] = saved - h;
        const double down = loss_of(w).item<double>();
        flat[i] = saved;
        const double numeric = (up - down) / (2 * h);
        EXPECT_NEAR(grad.view({-1})[i].item<double>(), numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
            << v.name << " tensor of shape " << t->sizes() << " entry " << i;
      }
    }
  }
}

TEST(TttLayer, Float32WeightsAndTheOfficialRopeTableStayCloseToFloat64AndBadShapesAreRefused) {
  for (const Variant& v : kVariants) {
    auto o = options(v);
    const auto w64 = weights(v, 11);
    const auto x64 = torch::randn({kBatch, 10, kHidden}, torch::kFloat64);
    auto state64 = ttt_initial_state(o, w64, kBatch);
    const auto reference = ttt_layer_forward(o, w64, x64, state64);
    TttLayerWeights w32 = w64;
    for (torch::Tensor* t : all_tensors(w32)) *t = t->to(torch::kFloat32);
    o.rope_precision = RopePrecision::kFloat32;
    auto state32 = ttt_initial_state(o, w32, kBatch);
    const auto ours = ttt_layer_forward(o, w32, x64.to(torch::kFloat32), state32);
    EXPECT_EQ(ours.scalar_type(), torch::kFloat32);
    EXPECT_EQ(state32.w1.scalar_type(), torch::kFloat32);
    EXPECT_LT(max_abs(ours.to(torch::kFloat64) - reference), 1e-4 * std::max(1.0, max_abs(reference))) << v.name;

    TttLayerWeights short_idx = w64;
    short_idx.learnable_token_idx = short_idx.learnable_token_idx.narrow(0, 0, kMini - 1);
    auto state = ttt_initial_state(o, short_idx, kBatch);
    EXPECT_THROW(ttt_layer_forward(o, short_idx, x64, state), std::invalid_argument) << v.name;
  }
}

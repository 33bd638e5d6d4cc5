#include "model/ttt_layer.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/layers.h"
#include "model/piecewise_recompute.h"

namespace ttt {

namespace {

// z standardised over its last axis (zero mean, unit biased variance), and 1 / its std.
std::pair<torch::Tensor, torch::Tensor> standardize(const torch::Tensor& z, double eps) {
  const auto centered = z - z.mean(-1, true);
  const auto rstd = (centered.pow(2).mean(-1, true) + eps).rsqrt();
  return {centered * rstd, rstd};
}

// The per-head LayerNorm over the last axis of z [B, H, r, d'], scale/bias [H, d'].
torch::Tensor head_layer_norm(const torch::Tensor& z, const torch::Tensor& scale, const torch::Tensor& bias,
                              double eps) {
  return standardize(z, eps).first * scale.unsqueeze(1) + bias.unsqueeze(1);
}

// d/dz of 1/2 || LN(z) - target ||^2 per row, in closed form (the LayerNorm's backward pass).
torch::Tensor head_layer_norm_l2_grad(const torch::Tensor& z, const torch::Tensor& target, const torch::Tensor& scale,
                                      const torch::Tensor& bias, double eps) {
  const int64_t width = z.size(-1);
  const auto [normed, rstd] = standardize(z, eps);
  const auto gamma = scale.unsqueeze(1);
  const auto g = (normed * gamma + bias.unsqueeze(1) - target) * gamma;
  return (g * static_cast<double>(width) - g.sum(-1, true) - normed * (g * normed).sum(-1, true)) * rstd /
         static_cast<double>(width);
}

torch::Tensor add_or_init(const torch::Tensor& acc, const torch::Tensor& delta) {
  return acc.defined() ? acc + delta : delta;
}

// One run of r tokens inside one mini-batch, starting at position state.position % b of it.
// q, k, v [B, H, r, d] (rotated), a [B, H, r] (a'_j), tau [r] (tau_i of the run's positions).
// Returns the inner model's outputs z_i = q_i + LN(g(q_i; W_i)) [B, H, r, d]; advances the state.
torch::Tensor ttt_inner_chunk(const TttLayerOptions& opt, const TttLayerWeights& w, TttLayerState& s,
                              const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& a, const torch::Tensor& tau) {
  const int64_t r = q.size(2);
  const auto target = v - k;
  const auto tau_rows = tau.view({1, 1, r, 1});
  // eta[i, j] = tau_i a'_j for j <= i: the weight of token j's gradient in token i's weights.
  const auto eta = (tau_rows * a.unsqueeze(-2)).tril();
  const auto a_cols = a.unsqueeze(-1);  // [B, H, r, 1]
  const bool has_acc = s.acc_w1.defined();
  const auto gamma = w.ttt_norm_weight.to(q.scalar_type());
  const auto beta = w.ttt_norm_bias.to(q.scalar_type());

  // One layer of the inner model read at the run's weights W_i = W_0 - tau_i (acc + sum_{j<=i} a'_j k_j^T G_j):
  // Q W_i + b_i in the dual form, given the keys' inputs `keys` and their gradients `grad` at W_0.
  auto read = [&](const torch::Tensor& queries, const torch::Tensor& keys, const torch::Tensor& grad,
                  const torch::Tensor& weight, const torch::Tensor& bias, const torch::Tensor& acc_w,
                  const torch::Tensor& acc_b) {
    auto out = torch::matmul(queries, weight) + bias -
               torch::matmul(eta * torch::matmul(queries, keys.transpose(-1, -2)), grad) - torch::matmul(eta, grad);
    if (has_acc) out = out - tau_rows * (torch::matmul(queries, acc_w) + acc_b);
    return out;
  };
  auto accumulate = [&](torch::Tensor& acc_w, torch::Tensor& acc_b, const torch::Tensor& keys,
                        const torch::Tensor& grad) {
    acc_w = add_or_init(acc_w, torch::matmul((a_cols * keys).transpose(-1, -2), grad));
    acc_b = add_or_init(acc_b, torch::matmul(a.unsqueeze(-2), grad));
  };

  torch::Tensor z;
  if (opt.inner == TttInnerModel::kLinear) {
    const auto grad = head_layer_norm_l2_grad(torch::matmul(k, s.w1) + s.b1, target, gamma, beta, opt.norm_eps);
    z = read(q, k, grad, s.w1, s.b1, s.acc_w1, s.acc_b1);
    accumulate(s.acc_w1, s.acc_b1, k, grad);
  } else {
    const auto z1 = torch::matmul(k, s.w1) + s.b1;
    const auto x2 = gelu_tanh(z1);
    const auto grad2 = head_layer_norm_l2_grad(torch::matmul(x2, s.w2) + s.b2, target, gamma, beta, opt.norm_eps);
    const auto grad1 = torch::matmul(grad2, s.w2.transpose(-1, -2)) * gelu_tanh_derivative(z1);
    const auto x2_read = gelu_tanh(read(q, k, grad1, s.w1, s.b1, s.acc_w1, s.acc_b1));
    z = read(x2_read, x2, grad2, s.w2, s.b2, s.acc_w2, s.acc_b2);
    accumulate(s.acc_w1, s.acc_b1, k, grad1);
    accumulate(s.acc_w2, s.acc_b2, x2, grad2);
  }
  s.position += r;
  if (s.position % opt.mini_batch_size == 0) {
    // The mini-batch is complete: the next starts from its last token's weights.
    const auto last_tau = tau[r - 1];
    s.w1 = s.w1 - last_tau * s.acc_w1;
    s.b1 = s.b1 - last_tau * s.acc_b1;
    if (opt.inner == TttInnerModel::kMlp) {
      s.w2 = s.w2 - last_tau * s.acc_w2;
      s.b2 = s.b2 - last_tau * s.acc_b2;
    }
    s.acc_w1 = s.acc_b1 = s.acc_w2 = s.acc_b2 = torch::Tensor();
  }
  return q + head_layer_norm(z, gamma, beta, opt.norm_eps);
}

torch::Tensor per_sequence(const torch::Tensor& w, int64_t batch) {
  std::vector<int64_t> shape = w.sizes().vec();
  shape.insert(shape.begin(), batch);
  return w.unsqueeze(0).expand(shape);
}

// The inner loop over consecutive tokens: what a layer's forward and its recomputation share.
struct TttRun {
  const TttLayerOptions& opt;
  const TttLayerWeights& w;
  const RopeTable& rope;
  const torch::Tensor& tau;  // [b]

  // Tokens from state s.position on: q, k [B, n, H, d] (not yet rotated), v [B, n, H, d], a [B, H, n].
  // Returns the inner outputs [B, H, n, d]; advances s.
  torch::Tensor tokens(TttLayerState& s, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& a) const {
    const int64_t b = opt.mini_batch_size, n = q.size(1);
    std::vector<torch::Tensor> out;
    for (int64_t t = 0; t < n;) {
      const int64_t pos = s.position % b;
      const int64_t r = std::min(b - pos, n - t);
      auto heads_first = [&](const torch::Tensor& y, bool rotate) {
        auto piece = y.narrow(1, t, r);
        if (rotate) piece = apply_rope(piece, rope, pos);
        return piece.permute({0, 2, 1, 3});
      };
      out.push_back(ttt_inner_chunk(opt, w, s, heads_first(q, true), heads_first(k, true), heads_first(v, false),
                                    a.narrow(2, t, r), tau.narrow(0, pos, r)));
      t += r;
    }
    return out.size() == 1 ? out[0] : torch::cat(out, 2);
  }
};

// Whole mini-batches from an aligned state, recomputed in the backward pass: q, k, v [B, n, H, d],
// a [B, H, n]. Returns the inner outputs [B, H, n, d]; advances s.
torch::Tensor recomputed_mini_batches(const TttRun& run, TttLayerState& s, const torch::Tensor& q,
                                      const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& a) {
  const bool mlp = run.opt.inner == TttInnerModel::kMlp;
  const int64_t position = s.position;
  // Inputs: the state, the group's tokens and the outer weights the inner loop reads directly.
  std::vector<torch::Tensor> inputs{s.w1, s.b1};
  if (mlp) inputs.insert(inputs.end(), {s.w2, s.b2});
  inputs.insert(inputs.end(), {q, k, v, a, run.tau, run.w.ttt_norm_weight, run.w.ttt_norm_bias});
  // One piece, the whole group: only its inputs are kept for the backward pass, as the official
  // remat over mini-batch groups does.
  auto op = c10::make_intrusive<PiecewiseOp>();
  op->pieces.push_back(Piece{std::vector<Span>(inputs.size()), Span{}});
  // Copies of what the closure reads: it outlives this call when the graph is kept.
  op->run = [opt = run.opt, w = run.w, rope = run.rope, mlp, position](const std::vector<torch::Tensor>& in, size_t) {
    size_t i = 0;
    TttLayerState state;
    state.position = position;
    state.w1 = in[i++];
    state.b1 = in[i++];
    if (mlp) {
      state.w2 = in[i++];
      state.b2 = in[i++];
    }
    const auto &q = in[i], &k = in[i + 1], &v = in[i + 2], &a = in[i + 3], &tau = in[i + 4];
    TttLayerWeights weights = w;
    weights.ttt_norm_weight = in[i + 5];
    weights.ttt_norm_bias = in[i + 6];
    const auto z = TttRun{opt, weights, rope, tau}.tokens(state, q, k, v, a);
    std::vector<torch::Tensor> out{z, state.w1, state.b1};
    if (mlp) out.insert(out.end(), {state.w2, state.b2});
    return out;
  };
  const auto out = run_piecewise(op, inputs);
  s.w1 = out[1];
  s.b1 = out[2];
  if (mlp) {
    s.w2 = out[3];
    s.b2 = out[4];
  }
  s.position += q.size(1);
  return out[0];
}

}  // namespace

torch::Tensor gelu_tanh(const torch::Tensor& x) { return torch::gelu(x, "tanh"); }

torch::Tensor gelu_tanh_derivative(const torch::Tensor& x) {
  const auto t = torch::tanh(0.79788456 * x * (1 + 0.044715 * x * x));
  return 0.5 * x * ((1 - t * t) * (0.79788456 + 0.1070322243 * x * x)) + 0.5 * (1 + t);
}

torch::Tensor causal_depthwise_conv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                    torch::Tensor& history) {
  const int64_t n = x.size(1);
  const int64_t width = weight.size(0);
  const auto padded = torch::cat({history.to(x.scalar_type()), x}, 1);
  auto y = bias.to(x.scalar_type()) + weight[0].to(x.scalar_type()) * padded.narrow(1, 0, n);
  for (int64_t j = 1; j < width; ++j) y = y + weight[j].to(x.scalar_type()) * padded.narrow(1, j, n);
  // A copy: a view would keep the whole padded input alive for as long as the state.
  history = padded.narrow(1, n, width - 1).clone();
  return y;
}

TttLayerState ttt_initial_state(const TttLayerOptions& opt, const TttLayerWeights& w, int64_t batch) {
  TttLayerState s;
  s.w1 = per_sequence(w.w1, batch);
  s.b1 = per_sequence(w.b1, batch);
  if (opt.inner == TttInnerModel::kMlp) {
    s.w2 = per_sequence(w.w2, batch);
    s.b2 = per_sequence(w.b2, batch);
  }
  if (opt.mamba_backbone) {
    const int64_t width = w.conv_q_weight.size(0);
    const int64_t hidden = w.wq.size(1);
    s.conv_q_history = torch::zeros({batch, width - 1, hidden}, w.wq.options());
    s.conv_k_history = torch::zeros({batch, width - 1, hidden}, w.wq.options());
  }
  return s;
}

torch::Tensor ttt_layer_forward(const TttLayerOptions& opt, const TttLayerWeights& w, const torch::Tensor& x,
                                TttLayerState& state) {
  const int64_t batch = x.size(0), n = x.size(1), hidden = x.size(2);
  const int64_t heads = opt.num_heads, head_dim = hidden / heads, b = opt.mini_batch_size;
  if (hidden % heads != 0 || head_dim % 2 != 0)
    throw std::invalid_argument("TTT layer: hidden size " + std::to_string(hidden) + " must split into " +
                                std::to_string(heads) + " heads of even size");
  if (w.learnable_token_idx.numel() != b)
    throw std::invalid_argument("TTT layer: learnable_token_idx has " + std::to_string(w.learnable_token_idx.numel()) +
                                " entries, the mini-batch " + std::to_string(b));
  if (n == 0) return torch::zeros_like(x);
  // The inner loop runs in float32 (float64 for float64 models), as the official code's.
  const auto acc = accumulation_dtype(x);
  const auto xs = x.to(acc);
  auto project = [&](const torch::Tensor& weight) { return torch::matmul(xs, weight.to(acc)); };
  torch::Tensor q, k;
  if (opt.mamba_backbone) {
    const auto shared = project(w.wq);
    q = causal_depthwise_conv(shared, w.conv_q_weight, w.conv_q_bias, state.conv_q_history);
    k = causal_depthwise_conv(shared, w.conv_k_weight, w.conv_k_bias, state.conv_k_history);
  } else {
    q = project(w.wq);
    k = project(w.wk);
  }
  const auto v = project(w.wv).view({batch, n, heads, head_dim});
  q = q.view({batch, n, heads, head_dim});
  k = k.view({batch, n, heads, head_dim});
  // a'_j = base_lr * lr_mult * sigmoid(x_j . g_h + c_h) / d: [B, H, N].
  const auto gate = torch::sigmoid(torch::matmul(xs, w.lr_gate_weight.to(acc).t()) + w.lr_gate_bias.to(acc));
  const auto a = (gate * (opt.base_lr * opt.lr_mult / static_cast<double>(head_dim))).permute({0, 2, 1});
  const auto positions = torch::arange(1, b + 1, torch::TensorOptions().dtype(acc).device(x.device()));
  const auto tau = (positions.reciprocal() + w.learnable_token_idx.to(acc)).clamp_min(0.0);
  const RopeTable rope = rope_table(head_dim, opt.rope_theta, 0, b, acc, x.device(), opt.rope_precision);

  TttLayerState& s = state;
  if (s.w1.scalar_type() != acc) {
    for (torch::Tensor* t : {&s.w1, &s.b1, &s.w2, &s.b2, &s.acc_w1, &s.acc_b1, &s.acc_w2, &s.acc_b2})
      if (t->defined()) *t = t->to(acc);
  }
  const TttRun run{opt, w, rope, tau};
  const bool recompute = opt.remat_group > 0 && torch::GradMode::is_enabled() &&
                         (x.requires_grad() || w.wq.requires_grad() || s.w1.requires_grad());
  std::vector<torch::Tensor> outputs;
  for (int64_t t = 0; t < n;) {
    const int64_t whole = (n - t) / b;  // whole mini-batches left
    if (recompute && s.position % b == 0 && whole > 0) {
      const int64_t count = std::min(opt.remat_group, whole) * b;
      outputs.push_back(recomputed_mini_batches(run, s, q.narrow(1, t, count), k.narrow(1, t, count),
                                                v.narrow(1, t, count), a.narrow(2, t, count)));
      t += count;
    } else {
      const int64_t count = std::min(b - s.position % b, n - t);
      outputs.push_back(
          run.tokens(s, q.narrow(1, t, count), k.narrow(1, t, count), v.narrow(1, t, count), a.narrow(2, t, count)));
      t += count;
    }
  }
  auto z = torch::cat(outputs, 2).permute({0, 2, 1, 3}).reshape({batch, n, hidden});
  z = torch::layer_norm(z, {hidden}, w.post_norm_weight.to(acc), w.post_norm_bias.to(acc), opt.norm_eps);
  if (opt.mamba_backbone) z = gelu_tanh(project(w.wg)) * z;
  return torch::matmul(z, w.wo.to(acc)).to(x.scalar_type());
}

}  // namespace ttt

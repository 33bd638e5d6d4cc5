#include "model/head_loss.h"

#include <algorithm>

#include "model/layers.h"
#include "model/piecewise_recompute.h"
#include "model/transformer.h"

namespace ttt {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// nll = NLL(x @ weight, targets) over rows x [N, D]; see the header. The forward pass keeps the
// gradients of sum(token_weights * nll) with respect to x (per token, unweighted: rows scale) and
// weight; the backward pass scales them by the multiple of token_weights it receives.
struct FusedHeadNll : public torch::autograd::Function<FusedHeadNll> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& targets, const torch::Tensor& token_weights, int64_t rows) {
    const int64_t N = x.size(0);
    auto nll = torch::empty({N}, x.options().dtype(accumulation_dtype(x.scalar_type())));
    auto grad_x = torch::empty({N, x.size(1)}, nll.options());
    auto grad_weight = torch::zeros(weight.sizes(), nll.options());
    for (int64_t r0 = 0; r0 < N; r0 += rows) {
      const int64_t r1 = std::min(N, r0 + rows);
      const auto xs = x.slice(0, r0, r1), ts = targets.slice(0, r0, r1);
      auto logits = torch::matmul(xs, weight);
      auto logp = torch::log_softmax(logits.to(accumulation_dtype(logits)), -1);
      nll.slice(0, r0, r1).copy_(-logp.gather(-1, ts.unsqueeze(-1)).squeeze(-1));
      // d nll_t / d logits_t = softmax_t - onehot(target_t).
      auto d_logits = logp.exp_().scatter_add_(-1, ts.unsqueeze(-1), torch::full({r1 - r0, 1}, -1.0, logp.options()));
      grad_x.slice(0, r0, r1).copy_(torch::matmul(d_logits.to(weight.scalar_type()), weight.t()));
      d_logits.mul_(token_weights.slice(0, r0, r1).unsqueeze(-1).to(d_logits.scalar_type()));
      grad_weight.add_(torch::matmul(xs.t(), d_logits.to(x.scalar_type())));
    }
    ctx->save_for_backward({grad_x, grad_weight, token_weights});
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["weight_dtype"] = static_cast<int64_t>(weight.scalar_type());
    return nll;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &grad_x = saved[0], &grad_weight = saved[1], &token_weights = saved[2];
    const auto g = grads[0].to(token_weights.scalar_type());
    // The gradient of the weight was summed with token_weights: the incoming gradient must be a
    // multiple of them (it is, for every loss this is used in; anything else is a bug). Checked on
    // the CPU, where reading the result costs no device synchronisation.
    const auto scale = (g * token_weights).sum() / (token_weights * token_weights).sum().clamp_min(1e-300);
    if (!g.is_cuda()) {
      const double mismatch = (g - scale * token_weights).abs().max().item<double>();
      TORCH_CHECK(mismatch <= 1e-5 * g.abs().max().item<double>() + 1e-30,
                  "head_token_nll: the gradient of the NLL is not a multiple of the token weights it was given");
    }
    const auto x_dtype = static_cast<torch::ScalarType>(ctx->saved_data["x_dtype"].toInt());
    const auto weight_dtype = static_cast<torch::ScalarType>(ctx->saved_data["weight_dtype"].toInt());
    return {(grad_x * g.unsqueeze(-1)).to(x_dtype), (grad_weight * scale).to(weight_dtype), torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor head_token_nll(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& h,
                             const torch::Tensor& targets, const torch::Tensor& token_weights, int64_t slice_elements) {
  const int64_t B = h.size(0), n = h.size(1), V = w.output_width();
  if (B * n * V <= slice_elements) return token_nll(lm_head(cfg, w, h), targets);
  auto x = rms_norm(h, w.ln_f(), cfg.rms_norm_eps);
  const auto compute = compute_dtype(x, cfg.compute_dtype);
  x = x.to(compute).reshape({B * n, -1});
  const auto weight = lm_head_weight(cfg, w, compute);
  const auto flat_targets = targets.reshape({B * n});
  const int64_t rows = std::max<int64_t>(1, slice_elements / V);
  if (torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad()))
    return FusedHeadNll::apply(x, weight, flat_targets, token_weights.reshape({B * n}).detach(), rows).view({B, n});
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> pieces;
  for (int64_t r0 = 0; r0 < B * n; r0 += rows) {
    const int64_t r1 = std::min(B * n, r0 + rows);
    pieces.push_back(token_nll(torch::matmul(x.slice(0, r0, r1), weight), flat_targets.slice(0, r0, r1)));
  }
  return torch::cat(pieces).view({B, n});
}

torch::Tensor recomputed_head_token_nll(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& h,
                                        const torch::Tensor& targets) {
  const int64_t B = h.size(0), n = h.size(1), V = w.output_width();
  auto x = rms_norm(h, w.ln_f(), cfg.rms_norm_eps);
  const auto compute = compute_dtype(x, cfg.compute_dtype);
  x = x.to(compute).reshape({B * n, -1});
  const auto weight = lm_head_weight(cfg, w, compute);
  const int64_t rows = std::max<int64_t>(1, piecewise_budget().piece / V);
  auto op = c10::make_intrusive<PiecewiseOp>();
  for (int64_t r0 = 0; r0 < B * n; r0 += rows) {
    const int64_t r1 = std::min(B * n, r0 + rows);
    op->pieces.push_back(Piece{{Span{0, r0, r1}, Span{}, Span{0, r0, r1}}, Span{0, r0, r1}});
  }
  op->run = [](const std::vector<torch::Tensor>& parts, size_t) {
    return std::vector<torch::Tensor>{token_nll(torch::matmul(parts[0], parts[1]), parts[2])};
  };
  return run_piecewise(op, {x, weight, targets.reshape({B * n})})[0].view({B, n});
}

}  // namespace ttt

#include "model/piecewise_recompute.h"

#include <algorithm>

namespace ttt {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

PiecewiseBudget& budget_storage() {
  static PiecewiseBudget budget;
  return budget;
}

torch::Tensor part_of(const torch::Tensor& t, const Span& s) { return s.dim < 0 ? t : t.slice(s.dim, s.begin, s.end); }

void add_into(torch::Tensor& full, const Span& s, const torch::Tensor& g) {
  if (!g.defined()) return;
  if (s.dim < 0)
    full.add_(g);
  else
    full.slice(s.dim, s.begin, s.end).add_(g);
}

torch::Tensor output_part(const PiecewiseOp& op, const torch::Tensor& t, size_t p) {
  return t.slice(op.output_dim, op.pieces[p].output_begin, op.pieces[p].output_end);
}

// Every piece, no graph recorded; the outputs joined.
torch::Tensor run_without_graph(const PiecewiseOp& op, const std::vector<torch::Tensor>& inputs) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> outs;
  for (size_t p = 0; p < op.pieces.size(); ++p) {
    std::vector<torch::Tensor> parts;
    for (size_t i = 0; i < inputs.size(); ++i) parts.push_back(part_of(inputs[i], op.pieces[p].inputs[i]));
    outs.push_back(op.run(parts, p));
  }
  return outs.size() == 1 ? outs[0] : torch::cat(outs, op.output_dim);
}

// Whether an input receives gradients: it requires grad (indices and masks never do). Saved
// inputs keep the flag, so the backward passes read it from them.
bool wanted(const torch::Tensor& input) { return input.requires_grad(); }

// Piece p's parts of the inputs, cut from the caller's graph; the wanted ones are leaves that
// require grad, also listed in `leaves`.
std::vector<torch::Tensor> leaf_parts(const PiecewiseOp& op, const std::vector<torch::Tensor>& inputs, size_t p,
                                      std::vector<torch::Tensor>& leaves) {
  std::vector<torch::Tensor> parts;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto part = part_of(inputs[i], op.pieces[p].inputs[i]).detach();
    if (wanted(inputs[i])) {
      part.requires_grad_(true);
      leaves.push_back(part);
    }
    parts.push_back(part);
  }
  return parts;
}

// The gradients of the wanted inputs (undefined for the others) for the output gradient d_out,
// one piece at a time.
std::vector<torch::Tensor> piecewise_gradient(const PiecewiseOp& op, const std::vector<torch::Tensor>& inputs,
                                              const torch::Tensor& d_out) {
  std::vector<torch::Tensor> grads(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    if (wanted(inputs[i])) grads[i] = torch::zeros_like(inputs[i]);
  torch::AutoGradMode grad_mode(true);
  for (size_t p = 0; p < op.pieces.size(); ++p) {
    std::vector<torch::Tensor> leaves;
    const auto parts = leaf_parts(op, inputs, p, leaves);
    const auto out = op.run(parts, p);
    if (!out.requires_grad()) continue;
    const auto g = torch::autograd::grad({out}, leaves, {output_part(op, d_out, p)}, /*retain_graph=*/false,
                                         /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t i = 0, j = 0; i < inputs.size(); ++i)
      if (wanted(inputs[i])) add_into(grads[i], op.pieces[p].inputs[i], g[j++]);
  }
  return grads;
}

// The gradient of a piecewise op as a node of its own, for backward passes that are
// differentiated again. Inputs: the op's inputs, then the output gradient. Outputs: the gradients
// of the wanted inputs, in order.
struct PiecewiseGradient : public torch::autograd::Function<PiecewiseGradient> {
  static variable_list forward(AutogradContext* ctx, torch::TensorList inputs_and_d_out,
                               const c10::intrusive_ptr<PiecewiseOp>& op) {
    ctx->save_for_backward(inputs_and_d_out.vec());
    ctx->saved_data["op"] = c10::IValue::make_capsule(op);
    ctx->set_materialize_grads(false);
    std::vector<torch::Tensor> inputs(inputs_and_d_out.begin(), inputs_and_d_out.end() - 1);
    variable_list out;
    for (auto& g : piecewise_gradient(*op, inputs, inputs_and_d_out.back()))
      if (g.defined()) out.push_back(g);
    return out;
  }

  // gg: the gradients of this node's outputs. Per piece: recompute the forward and first backward
  // pass with a graph, then differentiate the first-order gradients against gg.
  static variable_list backward(AutogradContext* ctx, variable_list gg) {
    const auto saved = ctx->get_saved_variables();
    const auto op = c10::static_intrusive_pointer_cast<PiecewiseOp>(ctx->saved_data["op"].toCapsule());
    const size_t n = saved.size() - 1;
    const std::vector<torch::Tensor> inputs(saved.begin(), saved.end() - 1);
    const auto& d_out = saved[n];
    // Incoming gradients by input index.
    std::vector<torch::Tensor> gg_of(n);
    for (size_t i = 0, j = 0; i < n; ++i)
      if (wanted(inputs[i])) gg_of[i] = gg[j++];
    variable_list result(n + 2);
    for (size_t i = 0; i < n; ++i)
      if (wanted(inputs[i])) result[i] = torch::zeros_like(inputs[i]);
    result[n] = torch::zeros_like(d_out);
    torch::AutoGradMode grad_mode(true);
    for (size_t p = 0; p < op->pieces.size(); ++p) {
      std::vector<torch::Tensor> leaves;
      const auto parts = leaf_parts(*op, inputs, p, leaves);
      auto d_part = output_part(*op, d_out, p).detach().requires_grad_(true);
      const auto out = op->run(parts, p);
      if (!out.requires_grad()) continue;
      const auto first = torch::autograd::grad({out}, leaves, {d_part}, /*retain_graph=*/true,
                                               /*create_graph=*/true, /*allow_unused=*/true);
      std::vector<torch::Tensor> outputs, grad_outputs;
      for (size_t i = 0, j = 0; i < n; ++i) {
        if (!wanted(inputs[i])) continue;
        const auto& f = first[j++];
        if (f.defined() && f.requires_grad() && gg_of[i].defined()) {
          outputs.push_back(f);
          grad_outputs.push_back(part_of(gg_of[i], op->pieces[p].inputs[i]));
        }
      }
      if (outputs.empty()) continue;
      auto wrt = leaves;
      wrt.push_back(d_part);
      const auto second = torch::autograd::grad(outputs, wrt, grad_outputs, /*retain_graph=*/false,
                                                /*create_graph=*/false, /*allow_unused=*/true);
      for (size_t i = 0, j = 0; i < n; ++i)
        if (wanted(inputs[i])) add_into(result[i], op->pieces[p].inputs[i], second[j++]);
      if (second.back().defined()) output_part(*op, result[n], p).add_(second.back());
    }
    return result;  // the last entry: the op argument
  }
};

struct PiecewiseForward : public torch::autograd::Function<PiecewiseForward> {
  static torch::Tensor forward(AutogradContext* ctx, torch::TensorList inputs,
                               const c10::intrusive_ptr<PiecewiseOp>& op) {
    ctx->save_for_backward(inputs.vec());
    ctx->saved_data["op"] = c10::IValue::make_capsule(op);
    return run_without_graph(*op, inputs.vec());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto inputs = ctx->get_saved_variables();
    const auto op = c10::static_intrusive_pointer_cast<PiecewiseOp>(ctx->saved_data["op"].toCapsule());
    variable_list result(inputs.size() + 1);
    if (torch::GradMode::is_enabled()) {  // create_graph: the gradient must be differentiable
      auto in = inputs;
      in.push_back(grads[0]);
      const auto g = PiecewiseGradient::apply(torch::TensorList(in), op);
      for (size_t i = 0, j = 0; i < inputs.size(); ++i)
        if (wanted(inputs[i])) result[i] = g[j++];
    } else {
      const auto g = piecewise_gradient(*op, inputs, grads[0]);
      std::copy(g.begin(), g.end(), result.begin());
    }
    return result;
  }
};

}  // namespace

torch::Tensor run_piecewise(const c10::intrusive_ptr<PiecewiseOp>& op, const std::vector<torch::Tensor>& inputs) {
  TORCH_CHECK(!op->pieces.empty(), "run_piecewise: an op without pieces");
  const bool any = std::any_of(inputs.begin(), inputs.end(), [](const torch::Tensor& t) { return wanted(t); });
  if (!any || !torch::GradMode::is_enabled()) return run_without_graph(*op, inputs);
  return PiecewiseForward::apply(torch::TensorList(inputs), op);
}

const PiecewiseBudget& piecewise_budget() { return budget_storage(); }

ScopedPiecewiseBudget::ScopedPiecewiseBudget(const PiecewiseBudget& budget) : saved_(budget_storage()) {
  budget_storage() = budget;
}

ScopedPiecewiseBudget::~ScopedPiecewiseBudget() { budget_storage() = saved_; }

}  // namespace ttt

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

// Piece p's part of one of the op's outputs (or of an output's gradient).
torch::Tensor output_part(const PiecewiseOp& op, const torch::Tensor& t, size_t p) {
  return part_of(t, op.pieces[p].output);
}

// Every piece, no graph recorded; each output joined across the pieces.
std::vector<torch::Tensor> run_without_graph(const PiecewiseOp& op, const std::vector<torch::Tensor>& inputs) {
  torch::NoGradGuard no_grad;
  std::vector<std::vector<torch::Tensor>> outs;
  for (size_t p = 0; p < op.pieces.size(); ++p) {
    std::vector<torch::Tensor> parts;
    for (size_t i = 0; i < inputs.size(); ++i) parts.push_back(part_of(inputs[i], op.pieces[p].inputs[i]));
    outs.push_back(op.run(parts, p));
  }
  if (outs.size() == 1) return outs[0];
  for (const auto& piece : outs)
    TORCH_CHECK(piece.size() == outs[0].size(), "run_piecewise: pieces return different numbers of outputs");
  std::vector<torch::Tensor> joined;
  for (size_t o = 0; o < outs[0].size(); ++o) {
    std::vector<torch::Tensor> across;
    for (const auto& piece : outs) across.push_back(piece[o]);
    joined.push_back(torch::cat(across, op.pieces[0].output.dim));
  }
  return joined;
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

// The outputs of a piece, recomputed with a graph, that a gradient flows back through: those that
// require grad and whose output gradient is defined. Their indices go to `used`.
std::vector<torch::Tensor> differentiable_outputs(const std::vector<torch::Tensor>& outs,
                                                  const std::vector<torch::Tensor>& d_outs, std::vector<size_t>& used) {
  std::vector<torch::Tensor> kept;
  for (size_t o = 0; o < outs.size(); ++o)
    if (outs[o].requires_grad() && d_outs[o].defined()) {
      kept.push_back(outs[o]);
      used.push_back(o);
    }
  return kept;
}

// The gradients of the wanted inputs (undefined for the others) for the output gradients d_outs,
// one piece at a time.
std::vector<torch::Tensor> piecewise_gradient(const PiecewiseOp& op, const std::vector<torch::Tensor>& inputs,
                                              const std::vector<torch::Tensor>& d_outs) {
  std::vector<torch::Tensor> grads(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    if (wanted(inputs[i])) grads[i] = torch::zeros_like(inputs[i]);
  torch::AutoGradMode grad_mode(true);
  for (size_t p = 0; p < op.pieces.size(); ++p) {
    std::vector<torch::Tensor> leaves;
    const auto parts = leaf_parts(op, inputs, p, leaves);
    std::vector<size_t> used;
    const auto outs = differentiable_outputs(op.run(parts, p), d_outs, used);
    if (outs.empty()) continue;
    std::vector<torch::Tensor> d_parts;
    for (size_t o : used) d_parts.push_back(output_part(op, d_outs[o], p));
    const auto g = torch::autograd::grad(outs, leaves, d_parts, /*retain_graph=*/false,
                                         /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t i = 0, j = 0; i < inputs.size(); ++i)
      if (wanted(inputs[i])) add_into(grads[i], op.pieces[p].inputs[i], g[j++]);
  }
  return grads;
}

// The gradient of a piecewise op as a node of its own, for backward passes that are
// differentiated again. Inputs: the op's inputs, then the gradients of its `outputs` outputs.
// Outputs: the gradients of the wanted inputs, in order.
struct PiecewiseGradient : public torch::autograd::Function<PiecewiseGradient> {
  static variable_list forward(AutogradContext* ctx, torch::TensorList inputs_and_d_outs,
                               const c10::intrusive_ptr<PiecewiseOp>& op, int64_t outputs) {
    ctx->save_for_backward(inputs_and_d_outs.vec());
    ctx->saved_data["op"] = c10::IValue::make_capsule(op);
    ctx->saved_data["outputs"] = outputs;
    ctx->set_materialize_grads(false);
    const std::vector<torch::Tensor> inputs(inputs_and_d_outs.begin(), inputs_and_d_outs.end() - outputs);
    const std::vector<torch::Tensor> d_outs(inputs_and_d_outs.end() - outputs, inputs_and_d_outs.end());
    variable_list out;
    for (auto& g : piecewise_gradient(*op, inputs, d_outs))
      if (g.defined()) out.push_back(g);
    return out;
  }

  // gg: the gradients of this node's outputs. Per piece: recompute the forward and first backward
  // pass with a graph, then differentiate the first-order gradients against gg.
  static variable_list backward(AutogradContext* ctx, variable_list gg) {
    const auto saved = ctx->get_saved_variables();
    const auto op = c10::static_intrusive_pointer_cast<PiecewiseOp>(ctx->saved_data["op"].toCapsule());
    const auto outputs = static_cast<size_t>(ctx->saved_data["outputs"].toInt());
    const size_t n = saved.size() - outputs;
    const std::vector<torch::Tensor> inputs(saved.begin(), saved.begin() + n);
    const std::vector<torch::Tensor> d_outs(saved.begin() + n, saved.end());
    // Incoming gradients by input index.
    std::vector<torch::Tensor> gg_of(n);
    for (size_t i = 0, j = 0; i < n; ++i)
      if (wanted(inputs[i])) gg_of[i] = gg[j++];
    variable_list result(saved.size() + 2);  // the inputs, the output gradients, op and outputs
    for (size_t i = 0; i < n; ++i)
      if (wanted(inputs[i])) result[i] = torch::zeros_like(inputs[i]);
    for (size_t o = 0; o < outputs; ++o)
      if (d_outs[o].defined()) result[n + o] = torch::zeros_like(d_outs[o]);
    torch::AutoGradMode grad_mode(true);
    for (size_t p = 0; p < op->pieces.size(); ++p) {
      std::vector<torch::Tensor> leaves;
      const auto parts = leaf_parts(*op, inputs, p, leaves);
      std::vector<size_t> used;
      const auto outs = differentiable_outputs(op->run(parts, p), d_outs, used);
      if (outs.empty()) continue;
      std::vector<torch::Tensor> d_parts;
      for (size_t o : used) d_parts.push_back(output_part(*op, d_outs[o], p).detach().requires_grad_(true));
      const auto first = torch::autograd::grad(outs, leaves, d_parts, /*retain_graph=*/true,
                                               /*create_graph=*/true, /*allow_unused=*/true);
      std::vector<torch::Tensor> firsts, grad_firsts;
      for (size_t i = 0, j = 0; i < n; ++i) {
        if (!wanted(inputs[i])) continue;
        const auto& f = first[j++];
        if (f.defined() && f.requires_grad() && gg_of[i].defined()) {
          firsts.push_back(f);
          grad_firsts.push_back(part_of(gg_of[i], op->pieces[p].inputs[i]));
        }
      }
      if (firsts.empty()) continue;
      auto wrt = leaves;
      wrt.insert(wrt.end(), d_parts.begin(), d_parts.end());
      const auto second = torch::autograd::grad(firsts, wrt, grad_firsts, /*retain_graph=*/false,
                                                /*create_graph=*/false, /*allow_unused=*/true);
      size_t j = 0;
      for (size_t i = 0; i < n; ++i)
        if (wanted(inputs[i])) add_into(result[i], op->pieces[p].inputs[i], second[j++]);
      for (size_t o : used) {
        const auto& g = second[j++];
        if (g.defined()) output_part(*op, result[n + o], p).add_(g);
      }
    }
    return result;
  }
};

struct PiecewiseForward : public torch::autograd::Function<PiecewiseForward> {
  static variable_list forward(AutogradContext* ctx, torch::TensorList inputs,
                               const c10::intrusive_ptr<PiecewiseOp>& op) {
    ctx->save_for_backward(inputs.vec());
    ctx->saved_data["op"] = c10::IValue::make_capsule(op);
    return run_without_graph(*op, inputs.vec());
  }

  // grads: one per output, zeros where an output was not used (autograd materialises them).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto inputs = ctx->get_saved_variables();
    const auto op = c10::static_intrusive_pointer_cast<PiecewiseOp>(ctx->saved_data["op"].toCapsule());
    variable_list result(inputs.size() + 1);
    if (torch::GradMode::is_enabled()) {  // create_graph: the gradient must be differentiable
      auto in = inputs;
      in.insert(in.end(), grads.begin(), grads.end());
      const auto g = PiecewiseGradient::apply(torch::TensorList(in), op, static_cast<int64_t>(grads.size()));
      for (size_t i = 0, j = 0; i < inputs.size(); ++i)
        if (wanted(inputs[i])) result[i] = g[j++];
    } else {
      const auto g = piecewise_gradient(*op, inputs, grads);
      std::copy(g.begin(), g.end(), result.begin());
    }
    return result;
  }
};

}  // namespace

std::vector<torch::Tensor> run_piecewise(const c10::intrusive_ptr<PiecewiseOp>& op,
                                         const std::vector<torch::Tensor>& inputs) {
  TORCH_CHECK(!op->pieces.empty(), "run_piecewise: an op without pieces");
  for (const auto& piece : op->pieces)
    TORCH_CHECK(piece.inputs.size() == inputs.size() &&
                    (op->pieces.size() == 1 || (piece.output.dim >= 0 && piece.output.dim == op->pieces[0].output.dim)),
                "run_piecewise: a piece must span every input, and the pieces of a split op their outputs, along "
                "one dim");
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

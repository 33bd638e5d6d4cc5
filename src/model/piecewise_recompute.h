// An operation computed in pieces that keeps only its inputs for the backward pass, and whose
// gradient is itself differentiable (once) the same way: what flash attention does for the scores,
// made generic and twice differentiable for meta-learning.
//
// Autograd keeps every intermediate of an operation until its backward pass; for attention that is
// the score matrix (B x H x queries x keys), and for the LM head the logits (tokens x vocabulary).
// Meta-learning differentiates the inner gradient again, so its graph also keeps the gradients of
// those matrices. A piecewise op instead runs piece by piece (query blocks, token rows) with no
// graph, keeps its inputs, and in the backward pass recomputes one piece at a time with a graph,
// takes that piece's gradient and drops it. When the backward pass itself is differentiated
// (create_graph), the gradient is a second piecewise node that recomputes each piece's forward and
// backward graph, one piece at a time, in the outer backward pass. At most one piece's
// intermediates (and their gradients) are alive at once; the price is recomputing the forward pass
// once per backward pass. Gradients of third order are not supported (none are taken).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace ttt {

// The part of an input a piece reads: indices [begin, end) along `dim`; dim < 0 is the whole tensor.
struct Span {
  int64_t dim = -1, begin = 0, end = 0;
};

// A piece: the span of each input it reads, and where its outputs lie in the op's outputs (the same
// span in each; whole for an op of one piece).
struct Piece {
  std::vector<Span> inputs;
  Span output;
};

struct PiecewiseOp : torch::CustomClassHolder {
  // In order. With several pieces, each output is the pieces' outputs concatenated along their
  // output spans' dim, which they must tile. One piece (an op recomputed whole, like a group of
  // TTT-layer mini-batches) may return several outputs of any shapes.
  std::vector<Piece> pieces;
  // The outputs of piece `piece` from the parts of the inputs its spans select. Must be a pure
  // function of them (it runs again in the backward passes) and differentiable twice where the
  // backward pass is differentiated.
  std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>& parts, size_t piece)> run;
};

// The op's outputs. Inputs that require grad receive gradients; others (indices, masks, constants)
// are read only.
std::vector<torch::Tensor> run_piecewise(const c10::intrusive_ptr<PiecewiseOp>& op,
                                         const std::vector<torch::Tensor>& inputs);

// When attention and the inner loop's LM head become piecewise ops. One process-wide setting:
// tests and benchmarks change it with ScopedPiecewiseBudget.
struct PiecewiseBudget {
  // An attention call whose scores (B x H x queries x visible keys, summed over its query blocks)
  // exceed this many elements runs piecewise (2^26: 256 MiB in fp32).
  int64_t attention_scores = int64_t{1} << 26;
  // A chunk of the inner loop whose logits exceed this many elements computes its loss piecewise
  // (unless its caller reads the logits: decoding).
  int64_t head_logits = int64_t{1} << 26;
  // The most elements of a piece's largest intermediate (scores or logits): 2^24, 64 MiB in fp32.
  int64_t piece = int64_t{1} << 24;
};

const PiecewiseBudget& piecewise_budget();

class ScopedPiecewiseBudget {
 public:
  explicit ScopedPiecewiseBudget(const PiecewiseBudget& budget);
  ~ScopedPiecewiseBudget();
  ScopedPiecewiseBudget(const ScopedPiecewiseBudget&) = delete;
  ScopedPiecewiseBudget& operator=(const ScopedPiecewiseBudget&) = delete;

 private:
  PiecewiseBudget saved_;
};

}  // namespace ttt

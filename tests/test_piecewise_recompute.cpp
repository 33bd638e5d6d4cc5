// Piecewise ops (src/model/piecewise_recompute.h): attention in query blocks, the inner loop's LM
// head in row slices and ops of several outputs (the TTT layers' groups), recomputed in the
// backward passes, give the values, gradients and gradients of gradients of the ops that keep
// their intermediates (float64), and meta-learning's outer gradients do not change when every op
// runs piecewise.
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <tuple>

#include "model/attention.h"
#include "model/head_loss.h"
#include "model/piecewise_recompute.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "support/autograd_graph.h"
#include "support/meta_gradients.h"
#include "support/tiny_model.h"
#include "ttt/sequence_loss.h"
#include "ttt/ttt_options.h"

using namespace ttt;

namespace {

// Every op piecewise, in pieces as small as they go (16 queries, 1 row of logits).
PiecewiseBudget everything_piecewise() { return PiecewiseBudget{0, 0, 1}; }

struct Derivatives {
  torch::Tensor value;
  std::vector<torch::Tensor> first, second;
  bool piecewise_forward = false, piecewise_gradient = false;
};

// f's value, the gradients of <f^2, r> with respect to the inputs, and the gradients of
// sum_i <d<f, r>/d input_i, s_i> (fixed random r and s_i): first and second order.
Derivatives derivatives(const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& f,
                        const std::vector<torch::Tensor>& inputs) {
  std::vector<torch::Tensor> leaves;
  for (const auto& t : inputs) leaves.push_back(t.detach().clone().requires_grad_(true));
  Derivatives d;
  d.value = f(leaves);
  d.piecewise_forward = ttt::testing::graph_has_node(d.value, "PiecewiseForward");
  torch::manual_seed(77);
  const auto r = torch::randn_like(d.value);
  // Squared: the op's incoming gradient (2 f r) then depends on the inputs too, as it does inside
  // a model, so the second order covers the gradient's dependence on it.
  d.first =
      torch::autograd::grad({(d.value * d.value * r).sum()}, leaves, {}, /*retain_graph=*/true, /*create_graph=*/true,
                            /*allow_unused=*/true);
  torch::Tensor second_objective;
  for (const auto& g : d.first) {
    if (!g.defined()) continue;
    d.piecewise_gradient = d.piecewise_gradient || ttt::testing::graph_has_node(g, "PiecewiseGradient");
    auto term = (g * torch::randn_like(g)).sum();
    second_objective = second_objective.defined() ? second_objective + term : term;
  }
  d.second = torch::autograd::grad({second_objective}, leaves, {}, false, false, /*allow_unused=*/true);
  return d;
}

// `unseen`: inputs the output does not depend on (their gradients are zero).
void expect_equal(const Derivatives& kept, const Derivatives& piecewise, const std::string& what,
                  const std::set<size_t>& unseen) {
  EXPECT_FALSE(kept.piecewise_forward) << what;
  EXPECT_TRUE(piecewise.piecewise_forward) << what;
  EXPECT_TRUE(piecewise.piecewise_gradient) << what;
  EXPECT_TRUE(torch::allclose(kept.value, piecewise.value, 1e-12, 1e-12)) << what;
  for (const auto* order : {"first", "second"}) {
    const auto& a = std::string(order) == "first" ? kept.first : kept.second;
    const auto& b = std::string(order) == "first" ? piecewise.first : piecewise.second;
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].defined(), b[i].defined()) << what << " " << order << " input " << i;
      if (!a[i].defined()) continue;
      EXPECT_EQ(a[i].abs().max().item<double>() > 0.0, unseen.count(i) == 0) << what << " " << order << " input " << i;
      EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-10, 1e-12))
          << what << " " << order << " input " << i << ": max diff " << (a[i] - b[i]).abs().max().item<double>();
    }
  }
}

// Both ways: budgets as shipped (the test's sizes keep their intermediates) and every op piecewise.
void check_both_ways(const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& f,
                     const std::vector<torch::Tensor>& inputs, const std::string& what,
                     const std::set<size_t>& unseen = {}) {
  const auto kept = derivatives(f, inputs);
  ScopedPiecewiseBudget all(everything_piecewise());
  expect_equal(kept, derivatives(f, inputs), what, unseen);
}

ModelConfig float64_config(int64_t window) {
  auto cfg = ttt::testing::tiny_model_config();
  cfg.sliding_window_size = window;
  return cfg;
}

AttentionWeights attention_weights_of(const std::vector<torch::Tensor>& t) {
  return AttentionWeights{t[1], t[2], t[3], t[4], t[5], t[6]};
}

std::vector<torch::Tensor> attention_inputs(const ModelConfig& cfg, int64_t n) {
  torch::manual_seed(5);
  const int64_t D = cfg.hidden_size, d = D / cfg.num_attention_heads;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  return {torch::randn({2, n, D}, opts),    torch::randn({D, D}, opts) * 0.4, torch::randn({D, D}, opts) * 0.4,
          torch::randn({D, D}, opts) * 0.4, torch::randn({D, D}, opts) * 0.4, 1 + 0.1 * torch::randn({d}, opts),
          1 + 0.1 * torch::randn({d}, opts)};
}

}  // namespace

// Ops of several outputs: a pair split into row pieces, and one piece whose outputs differ in
// shape (the form of the TTT layers' recomputed mini-batch groups), each used whole or in part.
TEST(PiecewiseRecompute, OpsOfSeveralOutputsMatchTheKeptGraphToSecondOrder) {
  torch::manual_seed(3);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const std::vector<torch::Tensor> inputs{torch::randn({7, 3}, opts), torch::randn({3, 4}, opts) * 0.5,
                                          torch::randn({4}, opts) * 0.5};
  // x [7, 3], W [3, 4], c [4] -> tanh(x W) [7, 4], exp(x W + c) [7, 4] / sum of W^2 by column [4].
  auto rows = [](const std::vector<torch::Tensor>& in) {
    const auto xw = torch::matmul(in[0], in[1]);
    return std::vector<torch::Tensor>{torch::tanh(xw), torch::exp(xw + in[2])};
  };
  auto shapes = [](const std::vector<torch::Tensor>& in) {
    return std::vector<torch::Tensor>{torch::tanh(torch::matmul(in[0], in[1]) + in[2]), (in[1] * in[1]).sum(0)};
  };
  auto split_op = [&](const std::vector<torch::Tensor>& in) {
    auto op = c10::make_intrusive<PiecewiseOp>();
    for (int64_t r = 0; r < 7; r += 3)  // pieces of 3, 3 and 1 rows
      op->pieces.push_back(
          Piece{{Span{0, r, std::min<int64_t>(7, r + 3)}, Span{}, Span{}}, Span{0, r, std::min<int64_t>(7, r + 3)}});
    op->run = [&](const std::vector<torch::Tensor>& parts, size_t) { return rows(parts); };
    return run_piecewise(op, in);
  };
  auto whole_op = [&](const std::vector<torch::Tensor>& in) {
    auto op = c10::make_intrusive<PiecewiseOp>();
    op->pieces.push_back(Piece{std::vector<Span>(3), Span{}});
    op->run = [&](const std::vector<torch::Tensor>& parts, size_t) { return shapes(parts); };
    return run_piecewise(op, in);
  };
  auto both = [](const std::vector<torch::Tensor>& out) { return torch::cat({out[0].flatten(), out[1].flatten()}); };
  using Outputs = std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)>;
  const std::vector<std::tuple<std::string, Outputs, Outputs>> ops{
      {"row pieces", rows, split_op}, {"one piece, outputs of two shapes", shapes, whole_op}};
  for (const auto& [name, kept, piecewise] : ops) {
    const auto& k = kept;
    const auto& p = piecewise;
    expect_equal(derivatives([&](const auto& in) { return both(k(in)); }, inputs),
                 derivatives([&](const auto& in) { return both(p(in)); }, inputs), name + ", both outputs used", {});
    // Only the first output: autograd hands the op a zero gradient for the second one. The kept
    // side reads the second output times zero, so that every input has a (possibly zero) gradient.
    expect_equal(derivatives([&](const auto& in) { return k(in)[0] + 0 * k(in)[1].sum(); }, inputs),
                 derivatives([&](const auto& in) { return p(in)[0]; }, inputs), name + ", first output used",
                 name == "row pieces" ? std::set<size_t>{2} : std::set<size_t>{});
  }
}

TEST(PiecewiseRecompute, AttentionStepMatchesKeptScoresToSecondOrder) {
  // 40 queries in pieces of 16 (the last one partial) against a window of 8 cached keys; from the
  // start of the sequence (hidden cache positions) and from further in.
  const auto cfg = float64_config(8);
  for (int64_t start : {0, 5, 30}) {
    auto inputs = attention_inputs(cfg, 40);
    torch::manual_seed(6);
    const int64_t H = cfg.num_attention_heads, d = cfg.hidden_size / H;
    inputs.push_back(torch::randn({2, 8, H, d}, torch::kFloat64));  // cached keys
    inputs.push_back(torch::randn({2, 8, H, d}, torch::kFloat64));  // cached values
    auto f = [&](const std::vector<torch::Tensor>& t) {
      KvCache cache{t[7], t[8]};
      auto out = attention_step(cfg, attention_weights_of(t), t[0], cache, start, AttentionKernel::kMath);
      // The updated cache is part of the output, as it feeds the next chunk.
      return torch::cat({out.flatten(), cache.k.flatten(), cache.v.flatten()});
    };
    // From the start, the cache holds only hidden positions, and the 40 tokens replace it.
    check_both_ways(f, inputs, "start " + std::to_string(start),
                    start == 0 ? std::set<size_t>{7, 8} : std::set<size_t>{});
  }
}

TEST(PiecewiseRecompute, FullSequenceAttentionMatchesKeptScores) {
  for (int64_t window : {0, 8, 20}) {
    for (int64_t segment : {0, 10}) {
      const auto cfg = float64_config(window);
      auto f = [&](const std::vector<torch::Tensor>& t) {
        return attention_full_sequence(cfg, attention_weights_of(t), t[0], window, segment);
      };
      check_both_ways(f, attention_inputs(cfg, 40),
                      "window " + std::to_string(window) + " segment " + std::to_string(segment));
    }
  }
}

TEST(PiecewiseRecompute, HeadNllMatchesFullLogitsToSecondOrder) {
  for (bool tied : {true, false}) {
    auto cfg = ttt::testing::tiny_model_config();
    cfg.tie_word_embeddings = tied;
    const auto w = ModelWeights::initialize(cfg, 3, torch::kFloat64);
    const auto batch = ttt::testing::random_batch(2, 7, cfg.vocab_size, 4);
    torch::manual_seed(8);
    const auto h = torch::randn({2, 7, cfg.hidden_size}, torch::kFloat64);
    const size_t head = w.index_of(tied ? "language_model.model.wte.weight" : "language_model.lm_head.weight");
    auto f = [&](const std::vector<torch::Tensor>& t) {
      auto weights = w;
      weights.tensors()[head] = t[1];
      weights.tensors()[w.index_of("language_model.model.ln_f.weight")] = t[2];
      return piecewise_budget().head_logits == 0 ? recomputed_head_token_nll(cfg, weights, t[0], batch.targets)
                                                 : token_nll(lm_head(cfg, weights, t[0]), batch.targets);
    };
    check_both_ways(f, {h, w.tensors()[head], w.get("language_model.model.ln_f.weight")}, tied ? "tied" : "untied");
  }
}

TEST(PiecewiseRecompute, MetaGradientsDoNotChange) {
  // Every attention call and chunk loss of a meta step piecewise: the outer gradients (through
  // every inner step, with and without recomputation of the chunks) equal the kept ones.
  auto cfg = ttt::testing::tiny_meta_config();
  cfg.training.seq_length = 16;  // 4 chunks of 4
  cfg.model.num_hidden_layers = 4;
  cfg.model.suffix_len = 2;  // the inner gradient of the first suffix block's MLP crosses the second's attention
  const auto batch = ttt::testing::random_batch(2, 16, cfg.model.vocab_size, 13);
  auto gradients = [&](int64_t remat_every) { return ttt::testing::meta_gradients(cfg, batch, remat_every); };
  for (int64_t remat : {0, 1}) {
    const auto kept = gradients(remat);
    ScopedPiecewiseBudget all(everything_piecewise());
    const auto piecewise = gradients(remat);
    EXPECT_NEAR(piecewise.first, kept.first, 1e-12) << "remat " << remat;
    for (size_t i = 0; i < kept.second.size(); ++i)
      EXPECT_TRUE(torch::allclose(piecewise.second[i], kept.second[i], 1e-9, 1e-12))
          << "remat " << remat << " param " << i << ": max diff "
          << (piecewise.second[i] - kept.second[i]).abs().max().item<double>();
  }
}

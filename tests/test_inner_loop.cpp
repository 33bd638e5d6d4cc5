// The inner loop (src/ttt): the meta-gradient (outer gradient through every inner SGD step)
// against central finite differences in float64, recomputation against keeping the graph, the
// meta loss with inner lr 0 against the pretrain loss, determinism, and the inner optimiser and
// learning-rate schedule against hand-computed values.
#include <gtest/gtest.h>

#include "model/weights.h"
#include "support/meta_gradients.h"
#include "support/tiny_model.h"
#include "ttt/inner_optimizer.h"
#include "ttt/sequence_loss.h"
#include "ttt/ttt_options.h"

using namespace ttt;

namespace {

struct Probe {
  std::string name;
  std::vector<int64_t> index;
};

double meta_loss_value(const Config& cfg, const ModelWeights& w, const Batch& batch) {
  return sequence_loss(cfg.model, w, batch, TttOptions::for_step(cfg, 0)).loss.item<double>();
}

// mask_first_chunk: sequence 0's first chunk has no target that counts (as when it predicts a
// BOS), so its inner gradient is exactly zero.
void check_against_finite_differences(const Config& cfg, double clip, bool mask_first_chunk = false) {
  auto w = ModelWeights::initialize(cfg.model, 21, torch::kFloat64);
  // Larger weights than the N(0, 0.02) init so the inner steps move the loss noticeably.
  for (auto& t : w.tensors())
    if (t.dim() == 2) t.mul_(8.0);
  auto batch = ttt::testing::random_batch(2, cfg.training.seq_length, cfg.model.vocab_size, 9);
  if (mask_first_chunk) batch.loss_mask.select(0, 0).narrow(0, 0, cfg.model.mini_batch_size).zero_();

  w.set_requires_grad(true);
  auto ttt = TttOptions::for_step(cfg, 0);
  ttt.clip = clip;
  auto loss = meta_loss(cfg.model, w, batch, ttt, /*create_graph=*/true).loss;
  auto grads = torch::autograd::grad({loss}, w.tensors());
  w.set_requires_grad(false);
  for (size_t k = 0; k < grads.size(); ++k)
    ASSERT_TRUE(torch::isfinite(grads[k]).all().item<bool>()) << w.layout()[k].name << " clip " << clip;

  auto cfg_clip = cfg;
  cfg_clip.training.optimizer_inner.clip_gradient = clip;
  const std::vector<Probe> probes = {
      {"language_model.model.h.prime_storage.0.feed_forward_prime.w1.weight", {3, 5}},  // initial fast weight
      {"language_model.model.h.prime_storage.0.feed_forward_prime.w2.weight", {7, 2}},
      {"language_model.model.h.blocks.1.seq_modeling_block.wq.weight", {1, 4}},  // suffix attention
      {"language_model.model.h.blocks.1.seq_modeling_block.wv.weight", {0, 9}},
      {"language_model.model.h.blocks.0.feed_forward.w2.weight", {2, 3}},  // prefix block
      {"language_model.model.h.blocks.0.seq_modeling_block.wk.weight", {5, 6}},
      {"language_model.model.wte.weight", {4, 7}},                            // embedding row (tied head too)
      {"language_model.model.h.prime_storage.0.ffn_prime_norm.weight", {2}},  // norm scales
      {"language_model.model.h.blocks.1.seq_modeling_block.k_norm.weight", {1}},
      {"language_model.model.ln_f.weight", {6}},
  };
  const double eps = 1e-6;
  for (const auto& probe : probes) {
    const size_t k = w.index_of(probe.name);
    auto element = [&]() {
      auto t = w.tensors()[k];
      for (auto i : probe.index) t = t.select(0, i);
      return t;
    };
    const double original = element().item<double>();
    element().fill_(original + eps);
    const double up = meta_loss_value(cfg_clip, w, batch);
    element().fill_(original - eps);
    const double down = meta_loss_value(cfg_clip, w, batch);
    element().fill_(original);
    const double numeric = (up - down) / (2 * eps);
    auto g = grads[k];
    for (auto i : probe.index) g = g.select(0, i);
    const double analytic = g.item<double>();
    EXPECT_NEAR(analytic, numeric, 1e-6 + 1e-5 * std::abs(numeric)) << probe.name << " clip " << clip;
  }
}

}  // namespace

TEST(MetaGradient, MatchesFiniteDifferencesFloat64) {
  auto cfg = ttt::testing::tiny_meta_config();  // 12 tokens, chunks of 4: 3 chunks, 2 inner steps
  check_against_finite_differences(cfg, /*clip=*/0.0);
}

TEST(MetaGradient, MatchesFiniteDifferencesWithActiveClipping) {
  auto cfg = ttt::testing::tiny_meta_config();
  check_against_finite_differences(cfg, /*clip=*/0.05);
}

TEST(MetaGradient, MatchesFiniteDifferencesWithAWindowNarrowerThanAChunk) {
  auto cfg = ttt::testing::tiny_meta_config();
  cfg.model.sliding_window_size = 1;  // each token attends to itself only; chunks of 4
  check_against_finite_differences(cfg, /*clip=*/0.0);
}

TEST(MetaGradient, MatchesFiniteDifferencesWhenAChunkHasNoTarget) {
  // An inner step on a chunk whose targets are all masked has a zero gradient. Its clip must not
  // differentiate the norm's square root at zero (0 * inf = NaN in the meta-gradient), with the
  // clip active or not.
  auto cfg = ttt::testing::tiny_meta_config();
  check_against_finite_differences(cfg, /*clip=*/1.0, /*mask_first_chunk=*/true);
  check_against_finite_differences(cfg, /*clip=*/0.05, /*mask_first_chunk=*/true);
}

TEST(MetaGradient, InnerLrZeroEqualsPretrainLoss) {
  auto cfg = ttt::testing::tiny_meta_config();
  cfg.training.optimizer_inner.lr = 0.0;
  auto w = ModelWeights::initialize(cfg.model, 2);
  auto batch = ttt::testing::random_batch(3, 12, cfg.model.vocab_size, 5);
  auto meta = sequence_loss(cfg.model, w, batch, TttOptions::for_step(cfg, 0));
  auto pre = pretrain_loss(cfg.model, w, batch);
  EXPECT_NEAR(meta.loss.item<double>(), pre.loss.item<double>(), 1e-5);
  EXPECT_TRUE(torch::allclose(meta.token_nll, pre.token_nll, 1e-4, 1e-5));
  // With a non-zero inner lr the two differ (test-time training changes the loss).
  cfg.training.optimizer_inner.lr = 1.0;
  auto adapted = sequence_loss(cfg.model, w, batch, TttOptions::for_step(cfg, 0));
  EXPECT_GT(std::abs(adapted.loss.item<double>() - pre.loss.item<double>()), 1e-6);
}

TEST(MetaGradient, RecomputationGivesTheSameGradients) {
  // inner_remat_freq = n recomputes groups of n chunks in the backward pass; the gradients must
  // equal those of keeping the whole graph (float64: equal to ~1e-12).
  auto cfg = ttt::testing::tiny_meta_config();
  cfg.training.seq_length = 16;  // 4 chunks of 4
  auto batch = ttt::testing::random_batch(2, 16, cfg.model.vocab_size, 13);
  for (int64_t window : {8, 3}) {  // wider and narrower than a chunk
    cfg.model.sliding_window_size = window;
    auto gradients = [&](int64_t remat_every) { return ttt::testing::meta_gradients(cfg, batch, remat_every); };
    const auto reference = gradients(0);
    for (int64_t n : {1, 2, 3, 4}) {
      const auto remat = gradients(n);
      EXPECT_NEAR(remat.first, reference.first, 1e-12) << "n=" << n;
      for (size_t i = 0; i < reference.second.size(); ++i)
        EXPECT_TRUE(torch::allclose(remat.second[i], reference.second[i], 1e-9, 1e-12))
            << "n=" << n << " param " << i << " window " << window;
    }
  }
}

TEST(MetaGradient, KeepingThePrefixGraphGivesTheSameGradients) {
  // model.remat_prefix_block other than nothing_saveable keeps the prefix blocks' graph instead of
  // recomputing them block by block: the same gradients (float64).
  auto cfg = ttt::testing::tiny_meta_config();
  cfg.training.seq_length = 16;
  auto batch = ttt::testing::random_batch(2, 16, cfg.model.vocab_size, 17);
  ASSERT_GE(first_suffix_layer(cfg.model), 1);  // a prefix block to keep or recompute
  for (int64_t n : {1, 3}) {
    cfg.model.remat_prefix_block = "nothing_saveable";
    const auto recomputed = ttt::testing::meta_gradients(cfg, batch, n);
    cfg.model.remat_prefix_block = "";
    const auto kept = ttt::testing::meta_gradients(cfg, batch, n);
    EXPECT_NEAR(kept.first, recomputed.first, 1e-12) << "n=" << n;
    for (size_t i = 0; i < recomputed.second.size(); ++i) {
      EXPECT_TRUE(torch::allclose(kept.second[i], recomputed.second[i], 1e-10, 1e-13)) << "n=" << n << " param " << i;
      EXPECT_GT(recomputed.second[i].abs().max().item<double>(), 0.0) << "param " << i << " has no gradient";
    }
  }
}

TEST(InnerOptimizer, LearningRateScheduleMatchesHandValues) {
  TrainingConfig t;
  t.optimizer_inner.lr = 1.0;
  t.ilr_init = 0.1;
  t.ilr_warmup_steps = 10;
  EXPECT_DOUBLE_EQ(inner_learning_rate(t, 0), 0.1 + 0.9 * 0.1);
  EXPECT_DOUBLE_EQ(inner_learning_rate(t, 4), 0.1 + 0.9 * 0.5);
  EXPECT_DOUBLE_EQ(inner_learning_rate(t, 9), 1.0);
  EXPECT_DOUBLE_EQ(inner_learning_rate(t, 100), 1.0);
  t.ilr_warmup_steps = 0;  // extension runs: constant lr, ilr_init ignored as in the reference
  EXPECT_DOUBLE_EQ(inner_learning_rate(t, 0), 1.0);
}

TEST(InnerOptimizer, ClipByGlobalNormPerSequence) {
  // Sequence 0: grads (3, 4) and (0) -> norm 5 -> clipped to norm 1: (0.6, 0.8).
  // Sequence 1: grads (0.3, 0.4), (0) -> norm 0.5 < 1: unchanged.
  auto theta_a = torch::zeros({2, 2}, torch::kFloat64), theta_b = torch::zeros({2, 1}, torch::kFloat64);
  auto g_a = torch::tensor({{3.0, 4.0}, {0.3, 0.4}}, torch::kFloat64);
  auto g_b = torch::zeros({2, 1}, torch::kFloat64);
  auto norms = per_sequence_global_norm({g_a, g_b});
  EXPECT_NEAR(norms[0].item<double>(), 5.0, 1e-12);
  EXPECT_NEAR(norms[1].item<double>(), 0.5, 1e-12);
  auto out = sgd_step({theta_a, theta_b}, {g_a, g_b}, /*lr=*/2.0, /*max_norm=*/1.0);
  auto expected = torch::tensor({{-1.2, -1.6}, {-0.6, -0.8}}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(out[0], expected, 0, 1e-12)) << out[0];
  auto unclipped = sgd_step({theta_a, theta_b}, {g_a, g_b}, 2.0, 0.0);
  EXPECT_TRUE(torch::allclose(unclipped[0], -2.0 * g_a, 0, 1e-12));
}

TEST(InnerOptimizer, ClippedStepOfAZeroGradientHasFiniteDerivatives) {
  // A sequence whose inner gradient is exactly zero (every target of its chunk masked): the step
  // leaves theta unchanged and its derivatives with respect to the gradient are finite.
  auto x = torch::tensor({0.0, 2.0}, torch::TensorOptions().dtype(torch::kFloat64).requires_grad(true));
  auto g = (x.view({2, 1}) * torch::tensor({{1.0, -1.0}}, torch::kFloat64));  // rows: (0, 0) and (2, -2)
  auto theta = torch::ones({2, 2}, torch::kFloat64);
  auto out = sgd_step({theta}, {g}, /*lr=*/1.0, /*max_norm=*/0.5);
  EXPECT_TRUE(torch::equal(out[0][0], theta[0]));
  auto d = torch::autograd::grad({(out[0] * torch::tensor({{1.0, 3.0}}, torch::kFloat64)).sum()}, {x})[0];
  ASSERT_TRUE(torch::isfinite(d).all().item<bool>()) << d;
  EXPECT_NEAR(d[0].item<double>(), 2.0, 1e-12);  // unclipped at 0: d/dx of -(x - 3x)
  EXPECT_NEAR(d[1].item<double>(), 0.0, 1e-12);  // clipped to norm 0.5: independent of x > 0
}

TEST(MetaGradient, SameSeedSameLossAndGradients) {
  auto cfg = ttt::testing::tiny_meta_config();
  auto batch = ttt::testing::random_batch(2, 12, cfg.model.vocab_size, 4);
  auto run = [&] {
    auto w = ModelWeights::initialize(cfg.model, 11);
    w.set_requires_grad(true);
    auto loss = meta_loss(cfg.model, w, batch, TttOptions::for_step(cfg, 0), /*create_graph=*/true).loss;
    auto grads = torch::autograd::grad({loss}, w.tensors());
    return std::make_pair(loss.item<double>(), grads[0].sum().item<double>());
  };
  EXPECT_EQ(run(), run());
}

TEST(Recomputation, BlockByBlockGivesTheSameGradientsInBothModes) {
  // model.remat_block=nothing_saveable (pretraining) and the meta prefix recompute the blocks one
  // at a time from their inputs in the backward pass; the gradients must equal those of keeping
  // the graph, also when only the blocks above some point train (float64).
  for (TrainMode mode : {TrainMode::kPretrain, TrainMode::kMeta}) {
    for (bool only_suffix_trains : {false, true}) {
      auto cfg = ttt::testing::tiny_meta_config();
      cfg.training.train_mode = mode;
      cfg.model.num_hidden_layers = 4;  // 3 prefix blocks
      cfg.training.seq_length = 16;
      auto batch = ttt::testing::random_batch(2, 16, cfg.model.vocab_size, 17);
      SCOPED_TRACE(std::string(mode == TrainMode::kMeta ? "meta" : "pretrain") +
                   (only_suffix_trains ? " suffix" : " all"));
      auto gradients = [&](bool recompute) {
        auto model = cfg.model;
        model.remat_block = recompute ? "nothing_saveable" : "";
        auto w = ModelWeights::initialize(model, 23, torch::kFloat64);
        for (size_t i = 0; i < w.tensors().size(); ++i)
          w.tensors()[i].requires_grad_(!only_suffix_trains ||
                                        w.layout()[i].split_name.find("suffix_blocks") != std::string::npos);
        const auto ttt = TttOptions::for_step(cfg, 0);
        auto out = loss_and_backward(model, w, batch, ttt, mode == TrainMode::kMeta && recompute ? 1 : 0, 0.5);
        std::vector<torch::Tensor> grads;
        for (auto& t : w.tensors()) grads.push_back(t.grad().defined() ? t.grad().clone() : torch::Tensor());
        return std::make_pair(out.loss.item<double>(), grads);
      };
      const auto kept = gradients(false), recomputed = gradients(true);
      const std::string what = std::string(mode == TrainMode::kMeta ? "meta" : "pretrain") +
                               (only_suffix_trains ? ", suffix only" : ", all");
      EXPECT_NEAR(recomputed.first, kept.first, 1e-12) << what;
      for (size_t i = 0; i < kept.second.size(); ++i) {
        ASSERT_EQ(recomputed.second[i].defined(), kept.second[i].defined()) << what << " param " << i;
        if (kept.second[i].defined())
          EXPECT_TRUE(torch::allclose(recomputed.second[i], kept.second[i], 1e-9, 1e-12)) << what << " param " << i;
      }
    }
  }
}

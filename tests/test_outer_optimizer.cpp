// The outer optimiser (train/outer_optimizer, train/lr_schedule): AdamW and the clip against
// hand-computed values, the warmup-cosine schedule, and the logged gradient norm.
#include <gtest/gtest.h>

#include <cmath>

#include "support/tiny_model.h"
#include "train/lr_schedule.h"
#include "train/outer_optimizer.h"

using namespace ttt;

namespace {

Config tiny_config() {
  Config c = ttt::testing::tiny_meta_config();
  c.training.optimizer_outer.lr = 1e-2;
  return c;
}

}  // namespace

TEST(OuterSchedule, WarmupCosineMatchesHandValues) {
  OptimizerConfig o;
  o.init_lr = 0.0;
  o.lr = 1.0;
  o.end_lr = 0.1;
  o.lr_warmup_steps = 10;
  o.lr_decay_steps = 110;
  EXPECT_DOUBLE_EQ(outer_learning_rate(o, 0), 0.0);
  EXPECT_DOUBLE_EQ(outer_learning_rate(o, 5), 0.5);
  EXPECT_DOUBLE_EQ(outer_learning_rate(o, 10), 1.0);
  EXPECT_NEAR(outer_learning_rate(o, 60), 0.1 + 0.9 * 0.5, 1e-12);  // halfway: cos(pi/2) = 0
  EXPECT_NEAR(outer_learning_rate(o, 110), 0.1, 1e-12);
  EXPECT_NEAR(outer_learning_rate(o, 500), 0.1, 1e-12);
  o.lr = 0.0;
  EXPECT_DOUBLE_EQ(outer_learning_rate(o, 50), 0.0);
}

TEST(OuterOptimizer, AdamWStepAndClipMatchHandComputation) {
  // One parameter of 2 elements (the embedding, excluded from decay when emb_wd=false) against
  // the AdamW formula: m = (1-b1) g, v = (1-b2) g^2, update = lr * m_hat / (sqrt(v_hat) + eps).
  Config c = tiny_config();
  c.training.spec_outer = {"language_model.model.wte.weight"};
  auto w = ModelWeights::initialize(c.model, 1);
  OptimizerConfig o = c.training.optimizer_outer;
  o.clip_gradient = 1.0;
  o.weight_decay = 0.1;
  OuterOptimizer opt(o, c.training.spec_outer, w);
  auto p = w.get("language_model.model.wte.weight");
  const auto before = p.detach().clone();
  p.mutable_grad() = torch::full_like(p, 0.0);
  p.mutable_grad()[0][0] = 3.0;
  p.mutable_grad()[0][1] = 4.0;  // global norm 5 -> clipped to (0.6, 0.8)
  EXPECT_DOUBLE_EQ(opt.clip_gradients().item<double>(), 5.0);
  EXPECT_NEAR(p.grad()[0][1].item<double>(), 0.8, 1e-6);
  const double lr = 0.01;
  opt.step(lr);
  for (int j : {0, 1}) {
    const double g = j == 0 ? 0.6 : 0.8, x = before[0][j].item<double>();
    const double m_hat = g, v_hat = g * g;  // bias-corrected after one step
    const double expected = x * (1 - lr * 0.1) - lr * m_hat / (std::sqrt(v_hat) + 1e-8);
    EXPECT_NEAR(p[0][j].item<double>(), expected, 1e-6) << j;
  }
  // Elements with zero gradient only decay.
  EXPECT_NEAR(p[1][0].item<double>(), before[1][0].item<double>() * (1 - lr * 0.1), 1e-7);
}

TEST(OuterOptimizer, LoggedGradientNormIsTheReferencesSafeNorm) {
  // The reference logs sqrt(sum g^2 + 1e-5); clipping uses the plain norm.
  EXPECT_DOUBLE_EQ(logged_gradient_norm(3.0), std::sqrt(9.0 + 1e-5));
  EXPECT_DOUBLE_EQ(logged_gradient_norm(0.0), std::sqrt(1e-5));
  Config c = tiny_config();
  auto w = ModelWeights::initialize(c.model, 1);
  OuterOptimizer opt(c.training.optimizer_outer, c.training.spec_outer, w);
  for (auto& t : opt.trainable()) t.mutable_grad() = torch::full_like(t, 0.5);
  int64_t n = 0;
  for (const auto& t : opt.trainable()) n += t.numel();
  EXPECT_NEAR(opt.clip_gradients().item<double>(), 0.5 * std::sqrt(static_cast<double>(n)), 1e-9);  // the plain norm
}

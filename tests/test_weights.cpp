// The weights container: seeded initialisation and agreement with the parameter layout.
#include <gtest/gtest.h>

#include "model/param_layout.h"
#include "model/weights.h"
#include "support/tiny_model.h"

using namespace ttt;
using ttt::testing::tiny_model_config;

TEST(Weights, SameSeedSameWeightsDifferentSeedDifferentWeights) {
  auto cfg = tiny_model_config();
  auto a = ModelWeights::initialize(cfg, 0), b = ModelWeights::initialize(cfg, 0), c = ModelWeights::initialize(cfg, 1);
  for (size_t i = 0; i < a.tensors().size(); ++i) EXPECT_TRUE(torch::equal(a.tensors()[i], b.tensors()[i]));
  EXPECT_FALSE(torch::equal(a.wte(), c.wte()));
  // Init statistics: N(0, 0.02) matrices, unit norm scales.
  auto wte = ModelWeights::initialize(
                 [] {
                   auto m = tiny_model_config();
                   m.vocab_size = 4000;
                   return m;
                 }(),
                 0)
                 .wte();
  EXPECT_NEAR(wte.std().item<double>(), 0.02, 0.001);
  EXPECT_TRUE(torch::equal(a.ln_f(), torch::ones_like(a.ln_f())));
}

TEST(Weights, ParamLayoutMatchesWeights) {
  auto cfg = tiny_model_config();
  auto w = ModelWeights::initialize(cfg, 0);
  Config c;
  c.model = cfg;
  int64_t n = 0;
  for (const auto& t : w.tensors()) n += t.numel();
  EXPECT_EQ(count_params(c).total, n);
}

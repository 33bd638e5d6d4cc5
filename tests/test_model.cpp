// Model equivalences and invariants: chunked SWA with caches vs full-sequence SWA, SWA vs full
// attention, the inner optimiser against hand-computed values, seeding.
#include <gtest/gtest.h>

#include "model/param_layout.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "support/tiny_model.h"
#include "ttt/inner_optimizer.h"
#include "ttt/ttt_options.h"
#include "ttt/sequence_loss.h"

using namespace ttt;
using ttt::testing::random_batch;
using ttt::testing::tiny_model_config;

namespace {

// Logits from the prefix run once plus the suffix blocks chunk by chunk with KV caches, no
// weight change between chunks.
torch::Tensor chunked_logits(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids) {
  TttOptions ttt;
  ttt.enabled = true;
  ttt.inner = select_inner_params(cfg, {"language_model.**.suffix_blocks.feed_forward_prime.**"});
  auto prefix = prefix_forward(cfg, w, ids);
  auto state = init_fast_state(cfg, w, ttt, ids.size(0), /*through_outer=*/false);
  std::vector<torch::Tensor> out;
  const int64_t b = cfg.mini_batch_size;
  for (int64_t c = 0; c < ids.size(1) / b; ++c)
    out.push_back(lm_head(cfg, w, suffix_forward(cfg, w, ttt, state, prefix.slice(1, c * b, (c + 1) * b))));
  return torch::cat(out, 1);
}

}  // namespace

TEST(Model, ChunkedSuffixSwaEqualsFullSequenceSwa) {
  torch::NoGradGuard no_grad;
  for (int64_t window : {4, 8, 12}) {
    for (int64_t b : {2, 4}) {
      auto cfg = tiny_model_config();
      cfg.sliding_window_size = window;
      cfg.mini_batch_size = b;
      auto w = ModelWeights::initialize(cfg, 3);
      auto batch = random_batch(2, 24, cfg.vocab_size, 1);
      auto full = full_sequence_logits(cfg, w, batch.input_ids);
      auto chunked = chunked_logits(cfg, w, batch.input_ids);
      EXPECT_TRUE(torch::allclose(full, chunked, 1e-4, 1e-5)) << "W=" << window << " b=" << b << " max diff "
                                                              << (full - chunked).abs().max().item<double>();
    }
  }
}

TEST(Model, ChunkedEqualsFullAcrossManyQueryBlocks) {
  // Long enough that the full-sequence path runs several query blocks (block = max(W/4, 64)).
  torch::NoGradGuard no_grad;
  auto cfg = tiny_model_config();
  cfg.sliding_window_size = 300;
  cfg.mini_batch_size = 50;
  auto w = ModelWeights::initialize(cfg, 3);
  auto ids = random_batch(1, 400, cfg.vocab_size, 8).input_ids;
  auto full = full_sequence_logits(cfg, w, ids);
  auto chunked = chunked_logits(cfg, w, ids);
  EXPECT_TRUE(torch::allclose(full, chunked, 1e-4, 1e-5)) << (full - chunked).abs().max().item<double>();
}

TEST(Model, ChunkedDiffersWhenWindowIsWrong) {
  // The equivalence above must be able to fail: a cache that forgets the window changes logits.
  torch::NoGradGuard no_grad;
  auto cfg = tiny_model_config();
  auto w = ModelWeights::initialize(cfg, 3);
  auto batch = random_batch(1, 24, cfg.vocab_size, 1);
  auto full = full_sequence_logits(cfg, w, batch.input_ids);
  auto narrow = cfg;
  narrow.sliding_window_size = 4;
  auto chunked = chunked_logits(narrow, w, batch.input_ids);
  EXPECT_FALSE(torch::allclose(full, chunked, 1e-4, 1e-5));
}

TEST(Model, SwaEqualsFullAttentionWhenWindowCoversSequence) {
  torch::NoGradGuard no_grad;
  auto swa = tiny_model_config();
  swa.prime = false;
  swa.suffix_len = 0;
  swa.sliding_window_size = 16;
  swa.mini_batch_size = 16;
  auto fa = swa;
  fa.seq_modeling_block = SeqModelingBlock::kSelfAttention;
  auto w = ModelWeights::initialize(swa, 5);
  auto ids = random_batch(2, 16, swa.vocab_size, 2).input_ids;
  auto a = full_sequence_logits(swa, w, ids);
  auto b = full_sequence_logits(fa, w, ids);
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6));
  // And a window shorter than the sequence does change the result.
  swa.sliding_window_size = 8;
  EXPECT_FALSE(torch::allclose(full_sequence_logits(swa, w, ids), b, 1e-4, 1e-5));
}

TEST(Model, SwaEqualsFullAttentionAcrossQueryBlocks) {
  // 1100 tokens: full attention runs two query blocks of up to 1024, SWA (W = 1100) five of 275.
  torch::NoGradGuard no_grad;
  auto swa = tiny_model_config();
  swa.prime = false;
  swa.suffix_len = 0;
  swa.num_hidden_layers = 1;
  swa.sliding_window_size = 1100;
  swa.mini_batch_size = 1100;
  auto fa = swa;
  fa.seq_modeling_block = SeqModelingBlock::kSelfAttention;
  auto w = ModelWeights::initialize(swa, 5);
  auto ids = random_batch(1, 1100, swa.vocab_size, 2).input_ids;
  EXPECT_TRUE(torch::allclose(full_sequence_logits(swa, w, ids), full_sequence_logits(fa, w, ids), 1e-4, 1e-5));
}

TEST(Model, SlidingWindowMaskOnlySeesTheWindow) {
  // Changing a token more than W positions back leaves a position's logits unchanged in a model
  // made of full-sequence SWA blocks with one layer, and changes them within the window.
  torch::NoGradGuard no_grad;
  auto cfg = tiny_model_config();
  cfg.prime = false;
  cfg.suffix_len = 0;
  cfg.num_hidden_layers = 1;
  cfg.sliding_window_size = 4;
  cfg.mini_batch_size = 16;
  auto w = ModelWeights::initialize(cfg, 7);
  auto ids = random_batch(1, 16, cfg.vocab_size, 3).input_ids;
  auto changed = ids.clone();
  changed[0][5] = (ids[0][5].item<int64_t>() % 10) + 1;
  auto a = full_sequence_logits(cfg, w, ids), b = full_sequence_logits(cfg, w, changed);
  EXPECT_TRUE(torch::allclose(a.select(1, 9), b.select(1, 9)));        // 9 - 5 >= W
  EXPECT_FALSE(torch::allclose(a.select(1, 8), b.select(1, 8)));       // 8 - 5 < W
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

TEST(Model, SameSeedSameWeightsDifferentSeedDifferentWeights) {
  auto cfg = tiny_model_config();
  auto a = ModelWeights::initialize(cfg, 0), b = ModelWeights::initialize(cfg, 0), c = ModelWeights::initialize(cfg, 1);
  for (size_t i = 0; i < a.tensors().size(); ++i) EXPECT_TRUE(torch::equal(a.tensors()[i], b.tensors()[i]));
  EXPECT_FALSE(torch::equal(a.wte(), c.wte()));
  // Init statistics: N(0, 0.02) matrices, unit norm scales.
  auto wte = ModelWeights::initialize([] { auto m = tiny_model_config(); m.vocab_size = 4000; return m; }(), 0).wte();
  EXPECT_NEAR(wte.std().item<double>(), 0.02, 0.001);
  EXPECT_TRUE(torch::equal(a.ln_f(), torch::ones_like(a.ln_f())));
}

TEST(Model, SameSeedSameLoss) {
  auto cfg = ttt::testing::tiny_meta_config();
  auto batch = random_batch(2, 12, cfg.model.vocab_size, 4);
  auto run = [&] {
    auto w = ModelWeights::initialize(cfg.model, 11);
    w.set_requires_grad(true);
    auto loss = meta_loss(cfg.model, w, batch, TttOptions::for_step(cfg, 0), /*create_graph=*/true).loss;
    auto grads = torch::autograd::grad({loss}, w.tensors());
    return std::make_pair(loss.item<double>(), grads[0].sum().item<double>());
  };
  EXPECT_EQ(run(), run());
}

TEST(Model, ParamLayoutMatchesWeights) {
  auto cfg = tiny_model_config();
  auto w = ModelWeights::initialize(cfg, 0);
  Config c;
  c.model = cfg;
  int64_t n = 0;
  for (const auto& t : w.tensors()) n += t.numel();
  EXPECT_EQ(count_params(c).total, n);
}

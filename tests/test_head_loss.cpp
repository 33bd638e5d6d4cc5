// The sliced LM head (model/head_loss.h): in slices of any size, with and without a gradient,
// tied and untied, it gives the NLL and the gradients of the whole-sequence head (float64), and
// the pretraining loss through it equals the loss of the plain head.
#include <gtest/gtest.h>

#include "data/batch.h"
#include "model/head_loss.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "support/tiny_model.h"
#include "ttt/sequence_loss.h"

using namespace ttt;
using ttt::testing::random_batch;
using ttt::testing::tiny_model_config;

namespace {

// Every trainable weight's gradient, in layout order.
std::vector<torch::Tensor> take_grads(ModelWeights& w) {
  std::vector<torch::Tensor> out;
  for (auto& t : w.tensors()) {
    out.push_back(t.grad().defined() ? t.grad().clone() : torch::zeros_like(t));
    if (t.grad().defined()) t.mutable_grad() = torch::Tensor();
  }
  return out;
}

void expect_same_grads(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b,
                       const ModelWeights& w) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-10, 1e-12)) << w.layout()[i].name;
}

}  // namespace

TEST(HeadLoss, SlicedNllAndGradientsEqualTheWholeHeadTiedAndUntied) {
  for (bool tied : {true, false}) {
    auto cfg = tiny_model_config();
    cfg.tie_word_embeddings = tied;
    auto w = ModelWeights::initialize(cfg, 5, torch::kFloat64);
    w.set_requires_grad(true);
    const auto batch = random_batch(2, 12, cfg.vocab_size, 3);
    auto weights = torch::rand({2, 12}, torch::kFloat64);
    auto hidden = [&] { return blocks_forward(cfg, w, embed(cfg, w, batch.input_ids), 0, cfg.num_hidden_layers); };

    auto whole = token_nll(lm_head(cfg, w, hidden()), batch.targets);
    (whole * weights).sum().mul(3.0).backward();
    const auto whole_grads = take_grads(w);
    // 2 x 12 tokens x 11 classes: slices of 1, 5 and 7 rows (the last one shorter).
    for (int64_t rows : {1, 5, 7}) {
      auto sliced = head_token_nll(cfg, w, hidden(), batch.targets, weights, rows * cfg.vocab_size);
      EXPECT_TRUE(torch::allclose(sliced, whole.detach(), 1e-12, 1e-12)) << "tied " << tied << " rows " << rows;
      (sliced * weights).sum().mul(3.0).backward();
      expect_same_grads(take_grads(w), whole_grads, w);
      torch::NoGradGuard no_grad;
      auto evaluated = head_token_nll(cfg, w, hidden(), batch.targets, torch::Tensor(), rows * cfg.vocab_size);
      EXPECT_TRUE(torch::allclose(evaluated, whole.detach(), 1e-12, 1e-12));
    }
  }
}

TEST(HeadLoss, AGradientThatIsNotAMultipleOfTheTokenWeightsIsRefused) {
  const auto cfg = tiny_model_config();
  auto w = ModelWeights::initialize(cfg, 5, torch::kFloat64);
  w.set_requires_grad(true);
  const auto batch = random_batch(1, 8, cfg.vocab_size, 4);
  auto h = blocks_forward(cfg, w, embed(cfg, w, batch.input_ids), 0, cfg.num_hidden_layers);
  auto nll = head_token_nll(cfg, w, h, batch.targets, torch::ones({1, 8}, torch::kFloat64), 2 * cfg.vocab_size);
  EXPECT_THROW((nll * torch::arange(8, torch::kFloat64)).sum().backward(), c10::Error);
}

TEST(HeadLoss, PretrainLossAndGradientsDoNotDependOnTheSlicing) {
  auto cfg = tiny_model_config();
  cfg.mini_batch_size = 4;
  auto w = ModelWeights::initialize(cfg, 8, torch::kFloat64);
  w.set_requires_grad(true);
  auto batch = random_batch(2, 12, cfg.vocab_size, 6);
  batch.loss_mask.index_put_({0, torch::indexing::Slice(0, 4)}, 0.0);  // a chunk without targets
  batch.loss_mask.index_put_({1, 5}, 0.0);
  auto whole = pretrain_loss(cfg, w, batch);
  whole.loss.mul(0.5).backward();
  const auto expected = take_grads(w);
  auto sliced = pretrain_loss(cfg, w, batch, /*head_slice_elements=*/3 * cfg.vocab_size);
  EXPECT_NEAR(sliced.loss.item<double>(), whole.loss.item<double>(), 1e-12);
  EXPECT_TRUE(torch::allclose(sliced.per_sequence, whole.per_sequence, 1e-12, 1e-12));
  sliced.loss.mul(0.5).backward();
  expect_same_grads(take_grads(w), expected, w);
}

// TTT-layer models (model.seq_modeling_block ttt_*) as a whole: the outer gradients of the
// pretraining loss against central finite differences in float64, the recomputation over groups
// of mini-batches against keeping the whole graph, the inner-lr warm-up's multiplier, and the
// configuration checks.
#include <gtest/gtest.h>

#include "config/loader.h"
#include "config/validate.h"
#include "model/transformer.h"
#include "support/autograd_graph.h"
#include "support/decoding.h"
#include "support/tiny_model.h"
#include "ttt/sequence_loss.h"
#include "ttt/ttt_options.h"

using namespace ttt;
using ttt::testing::random_batch;
using ttt::testing::ttt_layer_blocks;
using ttt::testing::ttt_layer_config;

namespace {

// Float64 weights with every parameter moved off its initial value (biases, token scales and
// norms start at constants), so each one's path through the model is exercised.
ModelWeights perturbed_weights(const ModelConfig& cfg, uint64_t seed) {
  auto w = ModelWeights::initialize(cfg, seed).to(torch::kFloat64);
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& t : w.tensors()) t.add_(torch::randn_like(t) * 0.05);
  return w;
}

std::vector<torch::Tensor> gradients(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch,
                                     double lr_mult = 1.0) {
  for (auto& t : w.tensors()) t.mutable_grad() = torch::Tensor();
  auto loss = pretrain_loss(cfg, w, batch, kHeadSliceElements, lr_mult).loss;
  loss.backward();
  std::vector<torch::Tensor> out;
  for (const auto& t : w.tensors()) out.push_back(t.grad().defined() ? t.grad().clone() : torch::zeros_like(t));
  return out;
}

}  // namespace

// Every parameter's gradient (three entries of each) against central differences, for both inner
// models in both backbones, with and without the pre-convolution, through the recomputed groups.
TEST(TttModel, OuterGradientsMatchFiniteDifferences) {
  for (const auto block : ttt_layer_blocks()) {
    Config config = ttt_layer_config(block, /*pre_conv=*/block != SeqModelingBlock::kTttLinearBase);
    config.model.remat_mini_batch_group_size = 2;
    const auto& cfg = config.model;
    auto w = perturbed_weights(cfg, 3);
    w.set_requires_grad(true);
    const auto batch = random_batch(2, 12, cfg.vocab_size, 4);
    const auto grads = gradients(cfg, w, batch, 0.7);
    const double eps = 1e-6;
    for (size_t i = 0; i < w.tensors().size(); ++i) {
      auto flat = w.tensors()[i].detach().view(-1);
      for (int64_t j : {int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
        const double saved = flat[j].item<double>();
        auto loss_at = [&](double value) {
          torch::NoGradGuard no_grad;
          flat[j] = value;
          return pretrain_loss(cfg, w, batch, kHeadSliceElements, 0.7).loss.item<double>();
        };
        const double numeric = (loss_at(saved + eps) - loss_at(saved - eps)) / (2 * eps);
        {
          torch::NoGradGuard no_grad;
          flat[j] = saved;
        }
        const double analytic = grads[i].view(-1)[j].item<double>();
        EXPECT_NEAR(analytic, numeric, 1e-7 + 1e-6 * std::abs(numeric))
            << to_string(block) << " " << w.layout()[i].name << "[" << j << "]";
      }
    }
  }
}

// Recomputing groups of 1 or 2 mini-batches in the backward pass gives the loss and gradients of
// the whole graph (to float64 rounding), also with a sequence that ends inside a group.
TEST(TttModel, RecomputedMiniBatchGroupsGiveTheGradientsOfTheWholeGraph) {
  for (const auto block : ttt_layer_blocks()) {
    Config config = ttt_layer_config(block);
    const auto w = perturbed_weights(config.model, 5);
    auto trained = w;
    trained.set_requires_grad(true);
    const auto batch = random_batch(2, 20, config.model.vocab_size, 6);  // 5 mini-batches
    config.model.remat_mini_batch_group_size = 0;
    const auto whole = gradients(config.model, trained, batch);
    {
      // The recomputed path is the one taken: its nodes are in the graph (and only with groups).
      auto has_recomputed_node = [&](int64_t group) {
        config.model.remat_mini_batch_group_size = group;
        return ttt::testing::graph_has_node(pretrain_loss(config.model, trained, batch).loss, "PiecewiseForward");
      };
      EXPECT_FALSE(has_recomputed_node(0)) << to_string(block);
      EXPECT_TRUE(has_recomputed_node(2)) << to_string(block);
    }
    for (int64_t group : {1, 2}) {
      config.model.remat_mini_batch_group_size = group;
      const auto recomputed = gradients(config.model, trained, batch);
      for (size_t i = 0; i < whole.size(); ++i)
        EXPECT_TRUE(torch::allclose(recomputed[i], whole[i], 1e-12, 1e-12))
            << to_string(block) << " group " << group << " " << trained.layout()[i].name << ": max diff "
            << (recomputed[i] - whole[i]).abs().max().item<double>();
    }
  }
}

// ttt-lm-jax's warm-up of the inner lr (TTT-MLP scripts: base 0.1 from 0.01 over the outer
// warm-up): (init + min(1, step / warmup) (base - init)) / base, rounded to bfloat16.
TEST(TttModel, InnerLrWarmupMultiplierIsTheOfficialOneInBfloat16) {
  ModelConfig m;
  m.ttt_base_lr = 0.1;
  m.ttt_base_lr_init = 0.01;
  m.ttt_base_lr_warmup = 480;
  EXPECT_EQ(ttt_layer_lr_multiplier(m, 0), 0.10009765625);  // 0.1 in bfloat16
  EXPECT_EQ(ttt_layer_lr_multiplier(m, 240), 0.55078125);   // 0.55 in bfloat16
  EXPECT_EQ(ttt_layer_lr_multiplier(m, 480), 1.0);
  EXPECT_EQ(ttt_layer_lr_multiplier(m, 100000), 1.0);
  m.ttt_base_lr_warmup = -1;  // off (the TTT-Linear scripts)
  EXPECT_EQ(ttt_layer_lr_multiplier(m, 0), 1.0);
  Config c;
  c.model = m;
  c.model.ttt_base_lr_warmup = 480;
  EXPECT_EQ(TttOptions::for_step(c, 0).ttt_layer_lr_mult, 0.10009765625);
  EXPECT_EQ(TttOptions::for_inference(c).ttt_layer_lr_mult, 1.0);  // evaluation: the full inner lr
  EXPECT_EQ(TttOptions::for_end_of_training(c, 0).ttt_layer_lr_mult, 1.0);
}

// The multiplier scales every token's inner learning rate: the loss changes with it.
TEST(TttModel, InnerLrMultiplierReachesTheLayers) {
  const Config config = ttt_layer_config(SeqModelingBlock::kTttLinear);
  const auto w = perturbed_weights(config.model, 7);
  const auto batch = random_batch(1, 12, config.model.vocab_size, 8);
  torch::NoGradGuard no_grad;
  const double full = pretrain_loss(config.model, w, batch).loss.item<double>();
  const double warm = pretrain_loss(config.model, w, batch, kHeadSliceElements, 0.1).loss.item<double>();
  EXPECT_NE(full, warm);
  EXPECT_EQ(full, pretrain_loss(config.model, w, batch, kHeadSliceElements, 1.0).loss.item<double>());
}

TEST(TttModel, ConfigurationsThatCannotWorkAreOneLineErrors) {
  auto error_of = [](const Config& c) {
    try {
      validate_config(c);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  Config c = ttt_layer_config(SeqModelingBlock::kTttLinear);
  EXPECT_EQ(error_of(c), "");
  c.model.qk_norm = true;
  EXPECT_NE(error_of(c).find("model.qk_norm"), std::string::npos);
  c = ttt_layer_config(SeqModelingBlock::kTttMlp);
  c.training.train_mode = TrainMode::kMeta;
  c.model.suffix_len = 1;
  EXPECT_NE(error_of(c).find("training.train_mode is meta"), std::string::npos);
  c = ttt_layer_config(SeqModelingBlock::kSlidingWindow);
  EXPECT_NE(error_of(c).find("model.pre_conv"), std::string::npos);
  c = ttt_layer_config(SeqModelingBlock::kTttMlp);
  c.model.ttt_base_lr_init = 0.01;  // a warm-up start without its length
  EXPECT_NE(error_of(c).find("model.ttt_base_lr_warmup"), std::string::npos);
}

// ttt-lm-jax's loss: per sequence, the mean NLL over its valid targets (BOS targets are not), then
// the mean over sequences; not a mean over the inner loop's mini-batches.
TEST(TttModel, LossIsTheMeanOverEachSequencesValidTargets) {
  const Config config = ttt_layer_config(SeqModelingBlock::kTttLinear);
  const auto w = perturbed_weights(config.model, 9);
  auto batch = random_batch(2, 12, config.model.vocab_size, 10);
  batch.loss_mask[0][5] = 0;  // a BOS target inside the second mini-batch
  batch.loss_mask[1][0] = 0;
  torch::NoGradGuard no_grad;
  const auto out = pretrain_loss(config.model, w, batch);
  const auto mask = batch.loss_mask.to(torch::kFloat64);
  const auto expected = (out.token_nll * mask).sum(1) / mask.sum(1);
  EXPECT_TRUE(torch::allclose(out.per_sequence, expected, 1e-12, 1e-12)) << out.per_sequence << expected;
  EXPECT_NEAR(out.loss.item<double>(), expected.mean().item<double>(), 1e-12);
}

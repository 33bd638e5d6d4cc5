// Model FLOPs per training token (train/flops.h): the weight term counts every matrix of the
// parameter table once (2 FLOPs per weight, 3x for training), and the attention term counts the
// keys each position's mask lets it see, worked out by hand for small sequences.
#include <gtest/gtest.h>

#include "model/weights.h"
#include "support/tiny_model.h"
#include "train/flops.h"

using namespace ttt;
using ttt::testing::tiny_model_config;

namespace {

// 6 x the weights of every matrix product in the layout: all 2-D parameters, the embedding
// only as the tied output head.
double weight_flops_from_layout(const ModelConfig& cfg) {
  double weights = 0;
  const auto model = ModelWeights::initialize(cfg, 0);
  for (const auto& p : model.layout()) {
    if (p.shape.size() != 2) continue;
    const bool embedding = p.name.find("wte") != std::string::npos;
    if (embedding && !cfg.tie_word_embeddings) continue;
    weights += static_cast<double>(p.shape[0] * p.shape[1]);
  }
  return 6 * weights;
}

double attention_flops(const ModelConfig& cfg, double mean_keys) {
  return 3 * 4 * static_cast<double>(cfg.hidden_size) * static_cast<double>(cfg.num_hidden_layers) * mean_keys;
}

}  // namespace

TEST(Flops, CountEveryMatrixOnceAndTheKeysEachMaskShows) {
  auto swa = tiny_model_config();  // prime MLP in the suffix block, tied embeddings, W 8
  swa.sliding_window_size = 4;
  // T 6, W 4: positions see 1, 2, 3, 4, 4, 4 keys.
  EXPECT_DOUBLE_EQ(training_flops_per_token(swa, 6), weight_flops_from_layout(swa) + attention_flops(swa, 18.0 / 6));

  auto fa = swa;
  fa.seq_modeling_block = SeqModelingBlock::kSelfAttention;
  fa.prime = false;
  fa.suffix_len = 0;
  fa.tie_word_embeddings = false;
  fa.mini_batch_size = 64;
  // Full attention, T 6: 1 + 2 + ... + 6 keys.
  EXPECT_DOUBLE_EQ(training_flops_per_token(fa, 6), weight_flops_from_layout(fa) + attention_flops(fa, 21.0 / 6));
  // Chunk-local pretraining (mini_batch_size 4 < T 8): 1, 2, 3, 4 twice.
  fa.mini_batch_size = 4;
  EXPECT_DOUBLE_EQ(training_flops_per_token(fa, 8), weight_flops_from_layout(fa) + attention_flops(fa, 20.0 / 8));
}

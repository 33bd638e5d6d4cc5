// Configurations and token streams shared by the inference tests.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "support/tiny_model.h"

namespace ttt::testing {

// The tiny model without suffix blocks, trained in pretrain mode with the given attention.
inline Config pretrain_config(SeqModelingBlock block) {
  Config c;
  c.model = tiny_model_config();
  c.model.seq_modeling_block = block;
  c.model.prime = false;
  c.model.suffix_len = 0;
  c.model.mini_batch_size = 64;  // >= every test length: full attention is not chunk-local
  c.training.train_mode = TrainMode::kPretrain;
  return c;
}

// The tiny model with TTT layers (mini-batch 4) in place of attention, as ttt-lm-jax builds them:
// no q/k norm, no post-norms; the pre-convolution where asked.
inline Config ttt_layer_config(SeqModelingBlock block, bool pre_conv = true) {
  Config c = pretrain_config(block);
  c.model.mini_batch_size = 4;
  c.model.qk_norm = false;
  c.model.post_norm = false;
  c.model.pre_conv = pre_conv;
  c.model.rope_theta = 10000;
  c.training.seq_length = 12;
  return c;
}

// The four TTT-layer blocks: both inner models in both backbones.
inline std::vector<SeqModelingBlock> ttt_layer_blocks() {
  return {SeqModelingBlock::kTttLinear, SeqModelingBlock::kTttMlp, SeqModelingBlock::kTttLinearBase,
          SeqModelingBlock::kTttMlpBase};
}

// Tokens [1, T + 1]: BOS then random ids.
inline torch::Tensor random_tokens(int64_t T, uint64_t seed) {
  auto batch = random_batch(1, T, tiny_model_config().vocab_size, seed);
  return torch::cat({batch.input_ids, batch.targets.slice(1, T - 1)}, 1);
}

inline void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what, double tol = 1e-4) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_TRUE(torch::allclose(a, b, tol, tol)) << what << ": max diff " << (a - b).abs().max().item<double>();
}

}  // namespace ttt::testing

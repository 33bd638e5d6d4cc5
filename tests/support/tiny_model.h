// Small model configurations and batches shared by the model tests.
#pragma once

#include <torch/torch.h>

#include "config/config.h"
#include "data/batch.h"

namespace ttt::testing {

// 2 blocks (1 prefix, 1 suffix with a prime MLP), D 16, 2 heads, vocabulary 11 (BOS 0).
inline ModelConfig tiny_model_config() {
  ModelConfig m;
  m.vocab_size = 11;
  m.output_size = 11;
  m.bos_token_id = 0;
  m.eos_token_id = 1;
  m.hidden_size = 16;
  m.num_attention_heads = 2;
  m.intermediate_size = 24;
  m.num_hidden_layers = 2;
  m.suffix_len = 1;
  m.prime = true;
  m.seq_modeling_block = SeqModelingBlock::kSlidingWindow;
  m.sliding_window_size = 8;
  m.mini_batch_size = 4;
  m.rope_theta = 500000;
  m.tie_word_embeddings = true;
  m.compute_dtype = DType::kFloat32;
  return m;
}

inline Config tiny_meta_config() {
  Config c;
  c.model = tiny_model_config();
  c.training.train_mode = TrainMode::kMeta;
  c.training.seq_length = 12;
  c.training.spec_inner = {"language_model.**.suffix_blocks.feed_forward_prime.**"};
  c.training.optimizer_inner.optimizer_type = OptimizerType::kSGD;
  c.training.optimizer_inner.lr = 1.0;
  c.training.optimizer_inner.clip_gradient = 1.0;
  return c;
}

// Random tokens in [1, V) with BOS at position 0 of the input; targets = inputs shifted by one.
inline Batch random_batch(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  torch::manual_seed(seed);
  auto tokens = torch::randint(1, V, {B, T + 1}, torch::kInt64);
  tokens.select(1, 0).fill_(0);
  auto input = tokens.slice(1, 0, T).contiguous();
  auto target = tokens.slice(1, 1, T + 1).contiguous();
  return Batch{input, target, (target != 0).to(torch::kFloat32)};
}

}  // namespace ttt::testing

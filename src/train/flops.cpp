#include "train/flops.h"

#include <algorithm>

#include "model/param_layout.h"
#include "model/transformer.h"

namespace ttt {

double training_flops_per_token(const ModelConfig& m, int64_t seq_length) {
  const double D = static_cast<double>(m.hidden_size), I = static_cast<double>(m.intermediate_size);
  const int64_t T = seq_length;
  // Keys attended per position, averaged: the window, the chunk-local segments of pretraining
  // (model/transformer.h) or every earlier position. The suffix blocks' cached window sees the
  // same keys as full-sequence sliding-window attention.
  const auto attn = full_sequence_attention(m, T);
  double keys = 0;
  for (int64_t t = 0; t < T; ++t) {
    int64_t k = attn.segment > 0 ? t % attn.segment + 1 : t + 1;
    if (attn.window > 0) k = std::min(k, attn.window);
    keys += static_cast<double>(k);
  }
  keys /= static_cast<double>(T);
  const double mlp = 3 * D * I;
  const int64_t primed = m.prime ? m.num_hidden_layers - first_suffix_layer(m) : 0;
  const double weights = static_cast<double>(m.num_hidden_layers) * (4 * D * D + mlp) +
                         static_cast<double>(primed) * mlp +
                         D * static_cast<double>(m.tie_word_embeddings ? m.vocab_size : m.output_size);
  double sequence_modelling = 4 * D * keys;  // attention scores and values, per layer and token
  if (is_ttt_layer(m.seq_modeling_block)) {
    // The dual form per head (d = D / H) and token: the inner model's matmuls for keys, queries
    // and the carried update (6 d d' per layer of d -> d'), and its b x b terms over the mini-batch.
    const double H = static_cast<double>(m.num_attention_heads), d = D / H, b = static_cast<double>(m.mini_batch_size);
    sequence_modelling = is_ttt_mlp(m.seq_modeling_block) ? H * (2 * 6 * d * 4 * d + 2 * 4 * d * d + 30 * b * d)
                                                          : H * (6 * d * d + 6 * b * d);
  }
  const double forward = 2 * weights + static_cast<double>(m.num_hidden_layers) * sequence_modelling;
  return 3 * forward;
}

}  // namespace ttt

// Choosing the next token from logits: repetition penalty, temperature, top-k, top-p (nucleus),
// then one draw from a caller-owned, seeded generator, so a fixed seed reproduces the text.
// Shape legend: V vocabulary (logits of one sequence).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <random>

namespace ttt {

struct SamplingOptions {
  double temperature = 1.0;         // 0: greedy (argmax)
  int64_t top_k = 0;                // keep the k most likely tokens; 0: all
  double top_p = 1.0;               // keep the smallest set of most likely tokens with mass >= p; 1: all
  double repetition_penalty = 1.0;  // > 1 discourages tokens already seen; 1: off
};

// Throws std::invalid_argument naming the option for a value out of range.
void check_sampling_options(const SamplingOptions& options);

// CTRL-style penalty: logits of seen tokens are divided by `penalty` when positive and multiplied
// by it when negative. logits [V], seen [V] bool -> [V].
torch::Tensor apply_repetition_penalty(const torch::Tensor& logits, const torch::Tensor& seen, double penalty);

// The distribution a token is drawn from: softmax(logits / temperature) restricted to the top-k
// tokens and then to the top-p nucleus, renormalised. logits [V] -> probabilities [V] (float64).
torch::Tensor sampling_distribution(const torch::Tensor& logits, const SamplingOptions& options);

// The next token: argmax of the penalised logits when temperature is 0, else one draw from
// sampling_distribution using `rng`. logits [V]; seen [V] bool (or undefined: no penalty).
// Logits holding NaN or +inf are a std::runtime_error.
int64_t sample_next_token(const torch::Tensor& logits, const torch::Tensor& seen, const SamplingOptions& options,
                          std::mt19937_64& rng);

}  // namespace ttt

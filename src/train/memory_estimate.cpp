#include "train/memory_estimate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <regex>

#include "data/dataset.h"
#include "model/attention.h"
#include "model/head_loss.h"
#include "model/param_layout.h"
#include "model/piecewise_recompute.h"
#include "model/transformer.h"

namespace ttt {
namespace {

double dtype_bytes(DType dtype) { return dtype == DType::kBFloat16 ? 2.0 : 4.0; }

// The score entries attention_full_sequence keeps per query, on average, and its query-block
// length: each block scores its queries against every key from its first visible one to its
// last query, so the masked corner of each block is stored too.
struct ScoredKeys {
  double per_query = 0, block = 0;
};
ScoredKeys scored_keys(int64_t T, int64_t window, int64_t segment) {
  const auto blocks = full_sequence_query_blocks(T, window, segment);
  double scored = 0;
  for (const QueryBlock& b : blocks)
    scored += static_cast<double>(b.end - b.begin) * static_cast<double>(b.end - b.first_key);
  return {scored / static_cast<double>(T), static_cast<double>(blocks.front().end - blocks.front().begin)};
}

// An fp32 result kept for the backward pass, plus its copy in the compute dtype (size c) when
// that is narrower.
double widened(double c) { return c == 4 ? 4 : 4 + c; }

// What autograd keeps per token of one block (model/transformer.cpp, attention.cpp, layers.cpp):
// each RMSNorm its fp32 input (a copy under bf16) and the normalised value, a pre-norm also its
// output (the next matmul's input); the q, k, v projections and QK-norms; under bf16 the fp32
// pairs RoPE rotates and its output; the contiguous copies batched matmuls make of the transposed
// q, k and v of every query block (each block scores `keys / block` times its own length of keys);
// the fp32 softmax of every scored key (and its bf16 copy); the attention output; each SwiGLU
// MLP's two projections, SiLU and product. c is the compute dtype's size.
// A piecewise attention call (`scores_kept` false) keeps its rotated q, k and v instead of the
// copies and the softmax.
double block_bytes_per_token(const ModelConfig& m, double keys_per_query, double query_block, bool prime, double c,
                             bool scores_kept) {
  const double D = static_cast<double>(m.hidden_size), F = static_cast<double>(m.intermediate_size),
               H = static_cast<double>(m.num_attention_heads);
  const int64_t residual_branches = prime ? 3 : 2;
  double bytes = (m.qk_norm ? 2 * (8 + c) * D : 2 * c * D) + c * D       // q, k (normed), v
                 + (c == 4 ? 0 : 2 * widened(c) * D)                     // RoPE
                 + c * D                                                 // attention output
                 + (prime ? 2 : 1) * 4 * F * c;                          // SwiGLU
  bytes += scores_kept ? (1 + 2 * keys_per_query / query_block) * c * D  // q, k, v copies for the matmuls
                             + widened(c) * H * keys_per_query           // softmax
                       : 3 * c * D;                                      // the piecewise op's inputs
  if (m.pre_norm) bytes += residual_branches * (8 + c) * D;
  if (m.post_norm) bytes += residual_branches * 8 * D;
  return bytes;
}

// The LM head per token: the final norm and the fp32 log-softmax kept for the backward pass; the
// backward pass adds the gradient of the log-probabilities and of the logits (and a bf16 copy).
double lm_head_saved_bytes(const ModelConfig& m, double c) {
  return (8 + c) * static_cast<double>(m.hidden_size) + 4 * static_cast<double>(m.vocab_size);
}
double lm_head_backward_bytes(const ModelConfig& m, double c) {
  return (8 + (c == 4 ? 0 : 2 * c)) * static_cast<double>(m.vocab_size);
}

// A piecewise op's backward pass: one piece's intermediates and their gradients (fp32) at a time;
// about twice that when the gradient is differentiated again.
double piece_bytes(bool second_order) {
  return (second_order ? 12.0 : 6.0) * 4.0 * static_cast<double>(piecewise_budget().piece);
}

// Pretraining's LM head over `tokens` tokens. Above kHeadSliceElements logits it runs in slices
// whose gradients are computed in the forward pass (model/head_loss.h): it keeps the final norm's
// tensors, the fp32 gradient of its input (and the backward pass's scaled copy) and of the weight,
// and one slice's logits, log-probabilities and their gradient at a time.
double pretrain_head_bytes(const ModelConfig& m, double tokens, double c) {
  const double D = static_cast<double>(m.hidden_size), V = static_cast<double>(m.vocab_size);
  if (tokens * V <= static_cast<double>(kHeadSliceElements))
    return tokens * (lm_head_saved_bytes(m, c) + lm_head_backward_bytes(m, c));
  return tokens * ((8 + c) * D + 2 * 4 * D) + 4 * D * V + 3 * 4 * static_cast<double>(kHeadSliceElements);
}

}  // namespace

MemoryEstimate estimate_training_memory(const Config& config, int64_t world_size) {
  const ModelConfig& m = config.model;
  const TrainingConfig& t = config.training;
  check_batches_divide(t, world_size);
  const ParamCounts counts = count_params(config);
  const double p = dtype_bytes(m.param_dtype), c = dtype_bytes(m.compute_dtype), s = dtype_bytes(m.state_dtype);
  const bool casts = c != p;  // each matmul keeps a copy of its weight in the compute dtype

  MemoryEstimate e;
  e.world_size = world_size;
  e.parameters = static_cast<double>(counts.total) * p;
  e.gradients = static_cast<double>(counts.outer) * p;
  e.optimizer_state = 2.0 * static_cast<double>(counts.outer) * p;
  e.gradient_buckets = world_size > 1 ? static_cast<double>(counts.outer) * p : 0.0;

  const int64_t B = t.global_batch_size / (world_size * t.accum_steps), T = t.seq_length;
  e.sequences_per_micro_batch = B;
  const double tokens = static_cast<double>(B * T), D = static_cast<double>(m.hidden_size);
  const int64_t L = m.num_hidden_layers, S = m.suffix_len;
  const FullSequenceAttention pattern = full_sequence_attention(m, T);
  const ScoredKeys scored = scored_keys(T, pattern.window, pattern.segment);
  const double weights_per_layer = static_cast<double>(counts.non_embedding) / static_cast<double>(L);
  const auto layer_has_prime = [&](int64_t i) { return m.prime && i >= first_suffix_layer(m); };

  const double hidden_sequence = tokens * D * c;  // the hidden states of one block boundary, or their gradient
  const int64_t H = m.num_attention_heads;
  const bool prefix_piecewise =
      full_sequence_score_elements(B, H, T, pattern.window, pattern.segment) > piecewise_budget().attention_scores;
  if (t.train_mode == TrainMode::kPretrain) {
    double blocks_per_token = 0, largest_block = 0;
    for (int64_t i = 0; i < L; ++i) {
      const double block =
          block_bytes_per_token(m, scored.per_query, scored.block, layer_has_prime(i), c, !prefix_piecewise);
      blocks_per_token += block;
      largest_block = std::max(largest_block, block);
    }
    const double head = pretrain_head_bytes(m, tokens, c) + (prefix_piecewise ? piece_bytes(false) : 0.0);
    if (m.remat_block == "nothing_saveable") {
      // Every block's input is kept; the backward pass recomputes one block's graph at a time
      // (with the gradients of what it saved, about as large again) and carries the gradient of
      // the hidden states between them.
      e.activations = static_cast<double>(L) * hidden_sequence + head + 2 * tokens * largest_block +
                      2 * hidden_sequence + (casts ? weights_per_layer * c : 0.0);
      e.activation_peak = "one block's recomputed graph in the backward pass (model.remat_block=nothing_saveable)";
      return e;
    }
    e.activations = tokens * blocks_per_token + head + (casts ? counts.total * c : 0.0);
    e.activation_peak = "the whole model's graph, at the start of its backward pass";
    return e;
  }

  // Meta: the prefix blocks once over the sequence; the suffix blocks and the LM head chunk by
  // chunk with the fast weights, each chunk's graph second order (the inner gradient is part of
  // it: about as much again as its forward), rotated keys and values of the window included.
  const int64_t b = m.mini_batch_size, W = m.sliding_window_size, C = T / b;
  const double P_inner = static_cast<double>(counts.inner);
  const double prefix_block =
      tokens * block_bytes_per_token(m, scored.per_query, scored.block, false, c, !prefix_piecewise) +
      (prefix_piecewise ? piece_bytes(false) : 0.0);
  const double prefix_graph =
      static_cast<double>(L - S) * prefix_block + (casts ? weights_per_layer * (L - S) * c : 0.0);
  // A chunk's attention and loss run piecewise above their budgets (inner_loop.cpp): the head then
  // keeps the final norm's tensors and the op's input instead of the log-probabilities.
  const bool suffix_piecewise = step_score_elements(B, H, b, W) > piecewise_budget().attention_scores;
  const bool head_piecewise =
      static_cast<double>(B * b) * static_cast<double>(m.vocab_size) > piecewise_budget().head_logits;
  double chunk_forward =
      (head_piecewise ? (8 + 2 * c) * D + 4 : lm_head_saved_bytes(m, c)) * static_cast<double>(B * b);
  for (int64_t j = 0; j < S; ++j)
    chunk_forward +=
        static_cast<double>(B * b) * block_bytes_per_token(m, static_cast<double>(W + b), static_cast<double>(b),
                                                           m.prime, c, !suffix_piecewise) +
        static_cast<double>(B * (W + b)) * D * 2 * widened(c);
  const double fast_weights = static_cast<double>(B) * P_inner * s;
  double chunk_graph = 2 * chunk_forward + (head_piecewise ? 0.0 : lm_head_backward_bytes(m, c) * B * b) +
                       2 * fast_weights + (suffix_piecewise || head_piecewise ? piece_bytes(true) : 0.0);
  if (casts)
    chunk_graph +=
        (weights_per_layer * S + static_cast<double>(B) * P_inner + static_cast<double>(m.vocab_size) * D) * c;
  const int64_t n = t.inner_remat_freq;
  if (n == 0) {
    e.activations = prefix_graph + static_cast<double>(C) * chunk_graph;
    e.activation_peak = "the whole inner loop's graph (training.inner_remat_freq=0)";
    return e;
  }
  const int64_t groups = (C + n - 1) / n;
  // Each group's start fast weights, and every position's keys and values once (inner_loop.cpp).
  const double states =
      static_cast<double>(groups + 1) * fast_weights + static_cast<double>(S * 2 * B * (W + T) + S * 2 * B * W) * D * c;
  const double group_phase =
      2 * hidden_sequence + states + static_cast<double>(std::min(n, C)) * chunk_graph + chunk_forward;
  if (m.remat_prefix_block != "nothing_saveable") {  // the prefix blocks' graph is held throughout
    e.activations = group_phase + prefix_graph;
    e.activation_peak = "a recomputed group of " + std::to_string(std::min(n, C)) +
                        " chunk(s) of the inner loop, beside the prefix blocks' graph";
    return e;
  }
  // The last backward pass recomputes the prefix blocks one at a time from their kept inputs (one
  // block's graph and the gradients of what it saved).
  const double prefix_phase = 3 * hidden_sequence + static_cast<double>(L - S) * hidden_sequence + 2 * prefix_block +
                              (casts ? weights_per_layer * c : 0.0);
  e.activations = std::max(group_phase, prefix_phase);
  e.activation_peak = group_phase >= prefix_phase
                          ? "a recomputed group of " + std::to_string(std::min(n, C)) + " chunk(s) of the inner loop"
                          : "a prefix block's recomputed graph, in the last backward pass";
  return e;
}

double parse_byte_size(const std::string& text, const std::string& what) {
  static const std::regex form(R"(\s*([0-9]+(?:\.[0-9]+)?(?:[eE][0-9]+)?)\s*([KMGT]i?B|B)?\s*)");
  std::smatch match;
  if (!std::regex_match(text, match, form))
    throw ConfigError(what + ": '" + text + "' is not a size (e.g. 80GiB, 512MiB, 1.5TB)");
  double bytes = std::stod(match[1]);
  const std::string unit = match[2];
  if (!unit.empty() && unit != "B") {
    const double base = unit.size() == 3 ? 1024.0 : 1000.0;
    bytes *= std::pow(base, 1 + std::string("KMGT").find(unit[0]));
  }
  return bytes;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

}  // namespace ttt

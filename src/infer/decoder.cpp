#include "infer/decoder.h"

#include <algorithm>
#include <stdexcept>

#include "model/layers.h"
#include "model/transformer.h"

namespace ttt {
namespace {

// Blocks before this index never see fast weights (all blocks when test-time training is off).
int64_t first_fast_block(const DecodeModel& m) {
  return m.test_time_training ? m.cfg.num_hidden_layers - m.cfg.suffix_len : m.cfg.num_hidden_layers;
}

torch::ScalarType cache_dtype(const DecodeModel& m, const ModelWeights& w) {
  return w.wte().scalar_type() == torch::kFloat64 ? torch::kFloat64 : dtype_from_name(m.cfg.compute_dtype);
}

int64_t logits_width(const ModelWeights& w) {
  return w.lm_head().defined() ? w.lm_head().size(1) : w.wte().size(0);
}

// Suffix block j with the fast weights in place of the stored inner parameters.
BlockWeights fast_block(const DecodeModel& m, const ModelWeights& w, const std::vector<torch::Tensor>& fast, int64_t j) {
  BlockWeights block = w.block(first_fast_block(m) + j);
  for (size_t k = 0; k < m.inner.names.size(); ++k)
    if (m.inner.suffix_block[k] == j) block.member(m.inner.local_names[k]) = fast[k];
  return block;
}

// Blocks [begin, end) with their stored weights over h, whose first token sits at `start`.
torch::Tensor run_blocks(const DecodeModel& m, const ModelWeights& w, DecodeState& state, torch::Tensor h,
                         int64_t begin, int64_t end, int64_t start) {
  for (int64_t i = begin; i < end; ++i)
    h = m.full_attention ? block_forward_step_growing(m.cfg, w.block(i), h, state.full_caches[i])
                         : block_forward_step(m.cfg, w.block(i), h, state.window_caches[i], start, &state.rope);
  return h;
}

torch::Tensor chunk_loss(const DecodeModel& m, const torch::Tensor& logits, const torch::Tensor& targets) {
  return masked_mean_nll(token_nll(logits, targets), (targets != m.cfg.bos_token_id).to(torch::kFloat32));
}

// One inner step on chunk `chunk` from its prefix-block outputs `hidden` [B, b, D] and targets,
// starting from the suffix caches `caches` (those at the chunk's first token): the evaluation
// path's suffix_chunk_logits + take_inner_step. The state gets the new fast weights and the
// suffix caches after the chunk. Returns the chunk's logits [B, b, V] (read before the step).
torch::Tensor learn_chunk(const DecodeModel& m, const ModelWeights& w, DecodeState& state, std::vector<KvCache> caches,
                          const torch::Tensor& hidden, const torch::Tensor& targets, int64_t chunk) {
  torch::AutoGradMode grad(true);  // the inner gradient, even when the caller decodes under no_grad
  FastState fast{state.fast_weights, std::move(caches), chunk};
  auto logits = suffix_chunk_logits(m.cfg, w, m.inner, fast, hidden);
  take_inner_step(fast, chunk_loss(m, logits, targets), m.step);
  state.fast_weights = fast.theta;
  for (size_t j = 0; j < fast.caches.size(); ++j) state.window_caches[first_fast_block(m) + j] = fast.caches[j];
  return logits.detach();
}

// The pending chunk is complete and `next_id` [B, 1] is its last target: learn from it. The
// caches it recomputes replace those of the token-by-token reads (equal up to float rounding), so
// the state is the evaluation path's.
void learn_pending_chunk(const DecodeModel& m, const ModelWeights& w, DecodeState& state, const torch::Tensor& next_id,
                         int64_t chunk) {
  if (state.pending_hidden.size(1) != m.cfg.mini_batch_size)
    throw std::logic_error("pending chunk holds " + std::to_string(state.pending_hidden.size(1)) + " tokens, expected " +
                           std::to_string(m.cfg.mini_batch_size));
  auto targets = torch::cat({state.pending_ids.slice(1, 1), next_id}, 1);
  learn_chunk(m, w, state, state.chunk_start_caches, state.pending_hidden, targets, chunk);
  state.chunk_start_caches.clear();
  state.pending_hidden = torch::Tensor();
  state.pending_ids = torch::Tensor();
}

// Reads tokens of a chunk whose targets are not all known yet through the suffix blocks with the
// current fast weights, and keeps what the chunk's step will need. Returns the last hidden states.
torch::Tensor read_pending(const DecodeModel& m, const ModelWeights& w, DecodeState& state, const torch::Tensor& hidden,
                           const torch::Tensor& ids, int64_t start) {
  torch::NoGradGuard no_grad;
  const int64_t first = first_fast_block(m);
  if (!state.pending_hidden.defined()) {
    // Cache tensors are replaced, never written in place, so these handles are a snapshot.
    state.chunk_start_caches.assign(state.window_caches.begin() + first, state.window_caches.end());
    state.pending_hidden = hidden;
    state.pending_ids = ids;
  } else {
    state.pending_hidden = torch::cat({state.pending_hidden, hidden}, 1);
    state.pending_ids = torch::cat({state.pending_ids, ids}, 1);
  }
  auto x = hidden;
  for (int64_t j = 0; j < m.cfg.suffix_len; ++j)
    x = block_forward_step(m.cfg, fast_block(m, w, state.fast_weights, j), x, state.window_caches[first + j], start,
                           &state.rope);
  return x;
}

torch::Tensor head(const DecodeModel& m, const ModelWeights& w, const torch::Tensor& h, bool all_positions) {
  torch::NoGradGuard no_grad;
  return lm_head(m.cfg, w, all_positions ? h : h.slice(1, h.size(1) - 1));
}

}  // namespace

DecodeModel decode_model(const Config& config, bool test_time_training) {
  DecodeModel m;
  m.cfg = config.model;
  m.full_attention = config.model.seq_modeling_block != "SWA";
  const bool meta = config.training.train_mode == "meta";
  m.test_time_training = meta && test_time_training;
  if (m.test_time_training) {
    if (m.full_attention)
      throw ConfigError("test-time training decodes through sliding-window caches: model.seq_modeling_block must be SWA");
    m.inner = select_inner_params(config.model, config.training.spec_inner);
  }
  // Evaluation and inference use the full inner learning rate (no warm-up).
  m.step.lr = config.training.optimizer_inner.lr;
  m.step.clip = config.training.optimizer_inner.clip_gradient;
  m.step.create_graph = false;
  m.state_dtype = dtype_from_name(config.model.state_dtype);
  // Segments like attention_full_sequence's query blocks: W/4 queries see 1.25 W keys. Full
  // attention takes 256 queries at a time: its scores span the whole context, and on a CPU larger
  // segments only cost memory (256, 512 and 128 ran equally fast at 32K; 1024 took twice as long).
  // With test-time training a segment holds whole chunks.
  const int64_t W = config.model.sliding_window_size, b = config.model.mini_batch_size;
  m.prefill_segment = m.full_attention ? 256 : std::max<int64_t>(64, W / 4);
  if (m.test_time_training) m.prefill_segment = (m.prefill_segment + b - 1) / b * b;
  return m;
}

DecodeState start_decoding(const DecodeModel& m, const ModelWeights& w, int64_t batch) {
  DecodeState state;
  const auto device = w.wte().device();
  const auto dtype = cache_dtype(m, w);
  for (int64_t i = 0; i < m.cfg.num_hidden_layers; ++i) {
    if (m.full_attention)
      state.full_caches.push_back(empty_growing_kv_cache(m.cfg, batch, dtype, device));
    else
      state.window_caches.push_back(empty_kv_cache(m.cfg, batch, dtype, device));
  }
  if (!m.full_attention)
    state.rope = rope_table(m.cfg, m.cfg.sliding_window_size + m.prefill_segment, dtype, device);
  if (m.test_time_training)
    state.fast_weights = init_fast_state(m.cfg, w, m.inner, batch, m.state_dtype, /*through_outer=*/false).theta;
  state.seen = torch::zeros({batch, logits_width(w)}, torch::TensorOptions().dtype(torch::kBool).device(device));
  return state;
}

torch::Tensor read_tokens(const DecodeModel& m, const ModelWeights& w, DecodeState& state, const torch::Tensor& input,
                          bool all_logits) {
  if (input.dim() != 2 || input.size(1) == 0) throw std::invalid_argument("read_tokens: ids must be [B, n] with n >= 1");
  const auto ids = input.to(w.wte().device(), torch::kInt64);
  const int64_t n = ids.size(1), S = m.prefill_segment, b = m.cfg.mini_batch_size;
  const int64_t first = first_fast_block(m);
  {
    torch::NoGradGuard no_grad;
    state.seen.scatter_(1, ids.clamp(0, state.seen.size(1) - 1), true);
  }
  std::vector<torch::Tensor> logits;  // every token's when all_logits, else only the last token's
  for (int64_t offset = 0; offset < n;) {
    // Segments end at multiples of S, so with test-time training they hold whole chunks.
    const int64_t seg_start = state.position;
    const int64_t len = std::min(n - offset, (seg_start / S + 1) * S - seg_start);
    const bool last_segment = offset + len == n;
    const auto seg_ids = ids.slice(1, offset, offset + len);
    torch::Tensor h;
    {
      torch::NoGradGuard no_grad;
      h = run_blocks(m, w, state, embed(m.cfg, w, seg_ids), 0, first, seg_start);
    }
    if (!m.test_time_training) {
      if (all_logits || last_segment) logits.push_back(head(m, w, h, all_logits));
      state.position += len;
      offset += len;
      continue;
    }
    // Suffix blocks: piece by piece, split at chunk boundaries.
    for (int64_t p = 0; p < len;) {
      const int64_t q = seg_start + p;
      const int64_t piece = std::min(len - p, b - q % b);
      const bool last_piece = last_segment && p + piece == len;
      if (q % b == 0 && state.pending_hidden.defined())
        learn_pending_chunk(m, w, state, seg_ids.slice(1, p, p + 1), q / b - 1);
      const auto piece_hidden = h.slice(1, p, p + piece);
      const int64_t target_end = offset + p + piece + 1;  // one past the piece's last target in `ids`
      if (piece == b && target_end <= n) {
        // A whole chunk with known targets: read it and learn from it in one pass, as meta_loss.
        auto chunk_logits = learn_chunk(m, w, state, {state.window_caches.begin() + first, state.window_caches.end()},
                                        piece_hidden, ids.slice(1, offset + p + 1, target_end), q / b);
        if (all_logits || last_piece) logits.push_back(all_logits ? chunk_logits : chunk_logits.slice(1, b - 1));
      } else {
        auto x = read_pending(m, w, state, piece_hidden, seg_ids.slice(1, p, p + piece), q);
        if (all_logits || last_piece) logits.push_back(head(m, w, x, all_logits));
      }
      state.position = q + piece;
      p += piece;
    }
    offset += len;
  }
  state.last_logits = logits.back().select(1, -1).to(torch::kFloat32);
  return all_logits ? torch::cat(logits, 1) : torch::Tensor();
}

}  // namespace ttt

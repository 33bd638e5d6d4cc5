#include "infer/decoder.h"

#include <algorithm>
#include <stdexcept>

#include "model/layers.h"
#include "model/transformer.h"

namespace ttt {
namespace {

bool full_attention(const ModelConfig& cfg) { return cfg.seq_modeling_block == SeqModelingBlock::kSelfAttention; }

// Blocks [0, end) with their stored weights over h, whose first token sits at `start`.
torch::Tensor stored_blocks(const ModelConfig& cfg, const ModelWeights& w, DecodeState& state, torch::Tensor h,
                            int64_t end, int64_t start) {
  for (int64_t i = 0; i < end; ++i)
    h = is_ttt_layer(cfg.seq_modeling_block) ? ttt_block_forward(cfg, w.block(i), h, state.ttt_blocks[i])
        : full_attention(cfg)                ? block_forward_step_growing(cfg, w.block(i), h, state.full_caches[i])
                              : block_forward_window(cfg, w.block(i), h, state.window_caches[i], start, state.rope);
  return h;
}

// Learns from one whole chunk whose prefix-block outputs are `hidden` [B, b, D], from the fast
// state `fast` at the chunk's first token: the inner loop's chunk_step, as evaluation runs it.
// The state takes the fast state after the chunk. Returns the chunk's logits [B, b, V] (read
// before the step).
torch::Tensor learn_chunk(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w, DecodeState& state,
                          FastState fast, const torch::Tensor& hidden, const torch::Tensor& targets) {
  torch::AutoGradMode grad(true);  // the inner gradient, even when the caller decodes under no_grad
  auto step = chunk_step(cfg, w, ttt, fast, hidden, targets, (targets != cfg.bos_token_id).to(torch::kFloat32),
                         /*learn=*/true, /*create_graph=*/false, /*keep_logits=*/true, &state.rope);
  state.fast = std::move(fast);
  return step.logits.detach();
}

// The pending chunk is complete and `next_id` [B, 1] is its last target: learn from it, from the
// caches at its start. The caches it recomputes replace those of the token-by-token reads (equal
// up to float rounding), so the state is the evaluation path's.
void learn_pending_chunk(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w, DecodeState& state,
                         const torch::Tensor& next_id) {
  const int64_t b = cfg.mini_batch_size;
  if (state.pending_hidden.size(1) != b)
    throw std::logic_error("pending chunk holds " + std::to_string(state.pending_hidden.size(1)) +
                           " tokens, expected " + std::to_string(b));
  auto targets = torch::cat({state.pending_ids.slice(1, 1), next_id}, 1);
  FastState chunk_start{state.fast.weights, state.chunk_start_caches, state.fast.position - b};
  learn_chunk(cfg, ttt, w, state, std::move(chunk_start), state.pending_hidden, targets);
  state.chunk_start_caches.clear();
  state.suffix_windows.clear();
  state.pending_hidden = torch::Tensor();
  state.pending_ids = torch::Tensor();
}

// Reads tokens of a chunk whose targets are not all known yet with the current fast weights, and
// keeps what the chunk's step will need. Returns the suffix blocks' output.
torch::Tensor read_pending(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w, DecodeState& state,
                           const torch::Tensor& hidden, const torch::Tensor& ids) {
  torch::NoGradGuard no_grad;
  if (!state.pending_hidden.defined()) {
    // A snapshot: the fast caches here come from a chunk step, init_fast_state or a loaded state,
    // never from storage that decoding writes in place.
    state.chunk_start_caches = state.fast.caches;
    state.pending_hidden = hidden;
    state.pending_ids = ids;
  } else {
    state.pending_hidden = torch::cat({state.pending_hidden, hidden}, 1);
    state.pending_ids = torch::cat({state.pending_ids, ids}, 1);
  }
  // Built at the chunk's first token (or from a loaded state's caches inside the chunk): the
  // window's origin is fixed by the position, so both hold the same bits (WindowCache).
  if (state.suffix_windows.empty())
    for (const auto& c : state.fast.caches)
      state.suffix_windows.push_back(window_cache_at(c, state.fast.position, cfg.mini_batch_size, state.rope));
  return suffix_forward_windows(cfg, w, ttt, state.fast, state.suffix_windows, hidden, state.rope);
}

torch::Tensor head(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& h, bool all_positions) {
  torch::NoGradGuard no_grad;
  return lm_head(cfg, w, all_positions ? h : h.slice(1, h.size(1) - 1));
}

// A copy of t that shares nothing with it, a leaf requiring grad when t does (the fast weights:
// the inner step differentiates with respect to them).
torch::Tensor copied(const torch::Tensor& t) {
  return t.defined() ? t.detach().clone().requires_grad_(t.requires_grad()) : t;
}
KvCache copied(const KvCache& c) { return {copied(c.k), copied(c.v)}; }
WindowCache copied(WindowCache c) {
  c.k = copied(c.k);
  c.k_rot = copied(c.k_rot);
  c.v = copied(c.v);
  return c;
}

}  // namespace

int64_t first_fast_block(const ModelConfig& cfg, const TttOptions& ttt) {
  return ttt.enabled ? first_suffix_layer(cfg) : cfg.num_hidden_layers;
}

int64_t prefill_segment(const ModelConfig& cfg) {
  // Segments like attention_full_sequence's query blocks: W/4 queries see 1.25 W keys. Full
  // attention takes 256 queries at a time: its scores span the whole context, and on a CPU larger
  // segments only cost memory (256, 512 and 128 ran equally fast at 32K; 1024 took twice as long).
  // TTT layers: whole mini-batches in the dual form; 1024 tokens keep the activations small.
  if (is_ttt_layer(cfg.seq_modeling_block)) return 1024;
  return full_attention(cfg) ? 256 : std::max<int64_t>(64, cfg.sliding_window_size / 4);
}

DecodeState start_decoding(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w, int64_t batch,
                           int64_t segment) {
  if (ttt.enabled && full_attention(cfg))
    throw ConfigError("test-time training decodes through sliding-window caches: model.seq_modeling_block must be SWA");
  DecodeState state;
  const int64_t b = cfg.mini_batch_size;
  state.segment = segment > 0 ? segment : prefill_segment(cfg);
  if (ttt.enabled) state.segment = (state.segment + b - 1) / b * b;  // whole chunks
  const auto device = w.wte().device();
  const auto dtype = compute_dtype(w.wte(), cfg.compute_dtype);
  if (cfg.seq_modeling_block == SeqModelingBlock::kSlidingWindow)
    state.rope =
        attention_rope_table(cfg, 0, cfg.sliding_window_size + state.segment, accumulation_dtype(dtype), device);
  for (int64_t i = 0; i < first_fast_block(cfg, ttt); ++i) {
    if (is_ttt_layer(cfg.seq_modeling_block))
      state.ttt_blocks.push_back(ttt_block_initial_state(cfg, w.block(i), batch));
    else if (full_attention(cfg))
      state.full_caches.push_back(empty_growing_kv_cache(cfg, batch, dtype, device));
    else
      state.window_caches.push_back(
          window_cache_at(empty_kv_cache(cfg, batch, dtype, device), 0, state.segment, state.rope));
  }
  if (ttt.enabled) state.fast = init_fast_state(cfg, w, ttt, batch, /*through_outer=*/false);
  state.seen = torch::zeros({batch, w.output_width()}, torch::TensorOptions().dtype(torch::kBool).device(device));
  return state;
}

DecodeState fork_decoding(const DecodeState& state) {
  torch::NoGradGuard no_grad;
  DecodeState fork = state;  // positions, periods and the RoPE table as they are
  for (auto& c : fork.window_caches) c = copied(c);
  for (auto& c : fork.suffix_windows) c = copied(c);
  for (auto& c : fork.full_caches) {
    c.k = copied(c.k);
    c.v = copied(c.v);
  }
  for (auto& b : fork.ttt_blocks) {
    b.pre_conv_history = copied(b.pre_conv_history);
    for (auto* t : {&b.layer.w1, &b.layer.b1, &b.layer.w2, &b.layer.b2, &b.layer.acc_w1, &b.layer.acc_b1,
                    &b.layer.acc_w2, &b.layer.acc_b2, &b.layer.conv_q_history, &b.layer.conv_k_history})
      *t = copied(*t);
  }
  for (auto& t : fork.fast.weights) t = copied(t);
  for (auto& c : fork.fast.caches) c = copied(c);
  for (auto& c : fork.chunk_start_caches) c = copied(c);
  for (auto* t : {&fork.pending_hidden, &fork.pending_ids, &fork.seen, &fork.last_logits}) *t = copied(*t);
  return fork;
}

torch::Tensor read_tokens(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w, DecodeState& state,
                          const torch::Tensor& input, bool all_logits) {
  if (input.dim() != 2 || input.size(1) == 0)
    throw std::invalid_argument("read_tokens: ids must be [B, n] with n >= 1");
  const auto ids = input.to(w.wte().device(), torch::kInt64);
  const int64_t n = ids.size(1), S = state.segment, b = cfg.mini_batch_size;
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
      h = stored_blocks(cfg, w, state, embed(cfg, w, seg_ids), first_fast_block(cfg, ttt), seg_start);
    }
    if (!ttt.enabled) {
      if (all_logits || last_segment) logits.push_back(head(cfg, w, h, all_logits));
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
        learn_pending_chunk(cfg, ttt, w, state, seg_ids.slice(1, p, p + 1));
      const auto piece_hidden = h.slice(1, p, p + piece);
      const int64_t target_end = offset + p + piece + 1;  // one past the piece's last target in `ids`
      if (piece == b && target_end <= n) {
        // A whole chunk with known targets: read it and learn from it in one pass, as evaluation.
        auto chunk_logits =
            learn_chunk(cfg, ttt, w, state, state.fast, piece_hidden, ids.slice(1, offset + p + 1, target_end));
        if (all_logits || last_piece) logits.push_back(all_logits ? chunk_logits : chunk_logits.slice(1, b - 1));
      } else {
        auto x = read_pending(cfg, ttt, w, state, piece_hidden, seg_ids.slice(1, p, p + piece));
        if (all_logits || last_piece) logits.push_back(head(cfg, w, x, all_logits));
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

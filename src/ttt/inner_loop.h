// TTT-E2E's inner loop: the one engine that training (the meta loss and its recomputing backward
// pass), evaluation, prefill and decoding all run.
//
// The prefix blocks read the whole sequence once. Then, chunk by chunk (mini_batch_size tokens),
// the suffix blocks read the chunk with the current fast weights and sliding-window KV caches, the
// head gives the chunk's next-token loss, and one clipped SGD step on that loss updates the fast
// weights for the next chunk (chunk_step). The outer loss is the mean of the chunk losses; at
// training time its gradient flows through every inner step (gradients of gradients).
//
// In every mode a sequence's loss is the equal-weight mean over its chunks of
// sum(NLL over valid targets) / #valid targets, and the batch loss is the mean over sequences.
// Shape legend: B batch, T time, b chunk (mini_batch_size), D hidden, V vocabulary.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "config/config.h"
#include "data/batch.h"
#include "model/attention.h"
#include "model/weights.h"
#include "ttt/ttt_options.h"

namespace ttt {

// What test-time training changes while it reads a sequence: the fast weights (one copy per
// sequence) and the suffix blocks' sliding-window KV caches.
struct FastState {
  std::vector<torch::Tensor> weights;  // per TttOptions::inner entry: [B, ...shape]
  std::vector<KvCache> caches;         // per suffix block
  int64_t position = 0;                // position of the next token the suffix blocks read
};

// Fast weights start as the (outer) initial weights, broadcast to every sequence. With
// `through_outer` they stay differentiable with respect to the outer weights (meta-learning);
// otherwise they are fresh leaves. Caches start empty (zeros, hidden by the mask).
FastState init_fast_state(const ModelConfig& cfg, const ModelWeights& w, const TttOptions& ttt, int64_t batch,
                          bool through_outer);

// The suffix blocks over the next n tokens, hidden [B, n, D] (prefix-block outputs), with the
// fast weights; advances the caches and the position. `rope`: precomputed angles of the local
// positions 0 .. W + n - 1 (decoding), else computed here.
torch::Tensor suffix_forward(const ModelConfig& cfg, const ModelWeights& w, const TttOptions& ttt, FastState& state,
                             const torch::Tensor& hidden, const RopeTable* rope = nullptr);

// Decoding's reads of a chunk whose targets are not all known yet: the suffix blocks over the next
// n tokens without a graph, through decoding's window caches (`windows`, one per suffix block, at
// the state's position; model/attention.h) instead of state.caches, which become the windows'
// last W positions. suffix_forward up to float rounding, without rotating the whole window per
// token. `rope` covers the windows' local positions.
torch::Tensor suffix_forward_windows(const ModelConfig& cfg, const ModelWeights& w, const TttOptions& ttt,
                                     FastState& state, std::vector<WindowCache>& windows, const torch::Tensor& hidden,
                                     const RopeTable& rope);

struct ChunkStep {
  // [B, b, V], read with the fast weights from before the step. Undefined unless asked for when
  // the chunk's logits exceed piecewise_budget().head_logits: its loss is then a piecewise op
  // (model/head_loss.h) that never holds them all.
  torch::Tensor logits;
  torch::Tensor nll;   // [B, b]
  torch::Tensor loss;  // [B]: masked mean NLL of each sequence
};

// One chunk: read it (suffix blocks + head) with the current fast state and, when `learn`, take
// the inner step on its loss: w <- w - lr * clip(d loss.sum() / d w), per sequence. Without
// `create_graph` the new fast weights and the caches are cut from the graph, so memory stays
// constant over any context; with it the step stays differentiable (meta-learning).
// `keep_logits`: the caller reads ChunkStep::logits (decoding), so they are always computed.
ChunkStep chunk_step(const ModelConfig& cfg, const ModelWeights& w, const TttOptions& ttt, FastState& state,
                     const torch::Tensor& hidden, const torch::Tensor& targets, const torch::Tensor& mask, bool learn,
                     bool create_graph, bool keep_logits, const RopeTable* rope = nullptr);

struct SequenceLoss {
  torch::Tensor loss;          // scalar: mean over the batch
  torch::Tensor per_sequence;  // [B]
  torch::Tensor token_nll;     // [B, T], detached: NLL of every target token by position
};

// The meta loss of a batch. With `create_graph` the loss is differentiable through every inner
// step (keeping the whole inner loop's graph); without, it is evaluation.
SequenceLoss meta_loss(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch, const TttOptions& ttt,
                       bool create_graph);

// The meta loss and its outer gradient with recomputation (the reference's
// training.inner_remat_freq = n): the forward pass keeps only the fast state at the start of every
// group of n chunks; the backward pass walks the groups in reverse, recomputes each with a
// differentiable inner loop, and chains the gradient of the fast state from group to group. Peak
// memory holds one group's graph; the price is one more forward pass of the suffix blocks (with
// their inner gradients) and, with model.remat_prefix_block=nothing_saveable (the default), of the
// prefix blocks, recomputed one at a time; any other policy keeps the prefix blocks' graph.
// Accumulates d(loss * scale)/d(weight) into .grad of every weight that requires grad (equal to
// meta_loss(...).loss.backward() up to float error) and returns the detached loss.
SequenceLoss meta_loss_backward(const ModelConfig& cfg, const ModelWeights& w, const Batch& batch,
                                const TttOptions& ttt, int64_t chunks_per_group, double scale);

}  // namespace ttt

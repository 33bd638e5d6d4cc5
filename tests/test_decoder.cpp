// Decoding (infer/decoder): reading tokens through KV caches one at a time or in pieces equals
// the whole-sequence forward (FA, SWA) and, for TTT-E2E, the evaluation path of the inner loop.
#include <gtest/gtest.h>

#include "infer/decoder.h"
#include "model/transformer.h"
#include "support/decoding.h"
#include "support/tiny_model.h"
#include "ttt/sequence_loss.h"

using namespace ttt;
using ttt::testing::expect_close;
using ttt::testing::pretrain_config;
using ttt::testing::random_tokens;
using ttt::testing::tiny_meta_config;
using ttt::testing::ttt_layer_blocks;
using ttt::testing::ttt_layer_config;

namespace {

// Reads `ids` in pieces of the given sizes (cycled), collecting every token's logits.
torch::Tensor read_in_pieces(const Config& config, const TttOptions& ttt, const ModelWeights& w, DecodeState& state,
                             const torch::Tensor& ids, const std::vector<int64_t>& pieces) {
  std::vector<torch::Tensor> out;
  for (int64_t at = 0, i = 0; at < ids.size(1); ++i) {
    const int64_t n = std::min(pieces[i % pieces.size()], ids.size(1) - at);
    out.push_back(read_tokens(config.model, ttt, w, state, ids.slice(1, at, at + n), /*all_logits=*/true));
    at += n;
  }
  return torch::cat(out, 1);
}

// The evaluation path (meta_loss's loop) over tokens [1, T + 1]: logits of the T inputs, chunk c
// read with the fast weights adapted on chunks < c. Its NLL is checked against meta_loss's.
torch::Tensor eval_path_logits(const Config& config, const ModelWeights& w, const torch::Tensor& tokens) {
  const auto& cfg = config.model;
  const int64_t T = tokens.size(1) - 1, b = cfg.mini_batch_size;
  const auto ttt = TttOptions::for_inference(config);
  auto inputs = tokens.slice(1, 0, T), targets = tokens.slice(1, 1, T + 1);
  const auto mask = (targets != cfg.bos_token_id).to(torch::kFloat32);
  auto prefix = prefix_forward(cfg, w, inputs);
  auto state = init_fast_state(cfg, w, ttt, 1, /*through_outer=*/false);
  std::vector<torch::Tensor> logits, nll;
  for (int64_t c = 0; c < T / b; ++c) {
    auto step =
        chunk_step(cfg, w, ttt, state, prefix.slice(1, c * b, (c + 1) * b), targets.slice(1, c * b, (c + 1) * b),
                   mask.slice(1, c * b, (c + 1) * b), /*learn=*/c + 1 < T / b, /*create_graph=*/false,
                   /*keep_logits=*/true);
    logits.push_back(step.logits.detach());
    nll.push_back(step.nll.detach());
  }
  const auto reference = meta_loss(cfg, w, Batch{inputs, targets, mask}, ttt, /*create_graph=*/false);
  EXPECT_TRUE(torch::equal(torch::cat(nll, 1), reference.token_nll));
  return torch::cat(logits, 1);
}

}  // namespace

TEST(Decode, TokenByTokenEqualsFullForwardForFaAndSwa) {
  torch::NoGradGuard no_grad;
  for (const auto block : {SeqModelingBlock::kSelfAttention, SeqModelingBlock::kSlidingWindow}) {
    const Config config = pretrain_config(block);
    const auto w = ModelWeights::initialize(config.model, 5);
    const auto ids = random_tokens(29, 3).slice(1, 0, 30);  // longer than the window (8)
    const auto full = full_sequence_logits(config.model, w, ids);
    const auto ttt = TttOptions::for_inference(config);
    DecodeState one_by_one = start_decoding(config.model, ttt, w);
    ASSERT_EQ(one_by_one.full_caches.empty(), block == SeqModelingBlock::kSlidingWindow);
    expect_close(read_in_pieces(config, ttt, w, one_by_one, ids, {1}), full, to_string(block) + " one token at a time");
    // Prefill in segments smaller than the prompt, then pieces of several sizes.
    DecodeState pieces = start_decoding(config.model, ttt, w, 1, /*segment=*/5);
    expect_close(read_in_pieces(config, ttt, w, pieces, ids, {13, 1, 4, 1, 1}), full, to_string(block) + " in pieces");
    EXPECT_EQ(pieces.position, 30);
    expect_close(pieces.last_logits, full.select(1, 29).to(torch::kFloat32), to_string(block) + " last logits");
  }
}

TEST(Decode, SwaCachesStayWithinTheWindow) {
  torch::NoGradGuard no_grad;
  const Config config = pretrain_config(SeqModelingBlock::kSlidingWindow);
  const auto w = ModelWeights::initialize(config.model, 5);
  const auto ttt = TttOptions::for_inference(config);
  DecodeState state = start_decoding(config.model, ttt, w);
  read_tokens(config.model, ttt, w, state, random_tokens(99, 4));
  for (const auto& c : state.window_caches) {
    EXPECT_EQ(window_cache_view(c).k.size(1), config.model.sliding_window_size);
    EXPECT_EQ(c.k.size(2), config.model.sliding_window_size + state.segment);  // W + one period
  }
}

// Two suffix blocks: the second one's keys depend on the first one's fast weights.
Config deeper_meta_config() {
  Config c = tiny_meta_config();
  c.model.num_hidden_layers = 3;
  c.model.suffix_len = 2;
  c.model.sliding_window_size = 6;
  return c;
}

void expect_prefill_equals_evaluation_path(const Config& config) {
  const auto w = ModelWeights::initialize(config.model, 7);
  const auto tokens = random_tokens(24, 11);
  const auto eval = eval_path_logits(config, w, tokens);  // [1, 24, V]
  const auto& cfg = config.model;
  const auto ttt = TttOptions::for_inference(config);
  ASSERT_TRUE(ttt.enabled);
  // A prompt of whole chunks: its logits are the evaluation path's first 12.
  DecodeState whole = start_decoding(cfg, ttt, w);
  expect_close(read_tokens(cfg, ttt, w, whole, tokens.slice(1, 0, 12), true), eval.slice(1, 0, 12),
               "prompt of 3 chunks");
  // A prompt of 10 tokens (2.5 chunks), then tokens 10..23 one at a time: the partial chunk joins
  // the next update, and every later chunk is learned from once its last target is read.
  DecodeState partial = start_decoding(cfg, ttt, w);
  auto prompt = read_tokens(cfg, ttt, w, partial, tokens.slice(1, 0, 10), true);
  auto decoded = read_in_pieces(config, ttt, w, partial, tokens.slice(1, 10, 24), {1});
  expect_close(torch::cat({prompt, decoded}, 1), eval, "prompt of 10, then decoding");
  // Odd pieces and small prefill segments give the same.
  DecodeState pieces = start_decoding(cfg, ttt, w, 1, /*segment=*/8);
  expect_close(read_in_pieces(config, ttt, w, pieces, tokens.slice(1, 0, 24), {3, 6, 1, 9}), eval, "odd pieces");
  // Without test-time training the logits differ after the first chunk: the steps above matter.
  const auto frozen = TttOptions::for_inference(config, /*test_time_training=*/false);
  DecodeState no_ttt = start_decoding(cfg, frozen, w);
  auto frozen_logits = read_tokens(cfg, frozen, w, no_ttt, tokens.slice(1, 0, 24), true);
  expect_close(frozen_logits.slice(1, 0, 4), eval.slice(1, 0, 4), "first chunk without steps");
  EXPECT_FALSE(torch::allclose(frozen_logits.slice(1, 4), eval.slice(1, 4), 1e-3, 1e-3));
}

TEST(Decode, E2ePrefillEqualsEvaluationPath) {
  expect_prefill_equals_evaluation_path(tiny_meta_config());  // W 8, b 4, one suffix block
  expect_prefill_equals_evaluation_path(deeper_meta_config());
  // A window narrower than a chunk (1: no attention to other tokens, as in the toy experiment).
  for (int64_t window : {1, 2}) {
    Config narrow = deeper_meta_config();
    narrow.model.sliding_window_size = window;
    expect_prefill_equals_evaluation_path(narrow);
  }
}

// Decoding's window caches re-base once per period (the prefill segment; the chunk for the suffix
// blocks): token by token across several periods equals the whole-sequence forward (SWA) and the
// evaluation path (E2E) in float64, with float64 RoPE angles (float32 ones differ by their own
// rounding at other local positions).
TEST(Decode, TokenByTokenAcrossWindowPeriodsEqualsTheFullForwardInFloat64) {
  {
    torch::NoGradGuard no_grad;
    Config config = pretrain_config(SeqModelingBlock::kSlidingWindow);
    config.model.rope_precision = RopePrecision::kFloat64;
    const auto w = ModelWeights::initialize(config.model, 5).to(torch::kFloat64);
    const auto ids = random_tokens(149, 3);  // 150 tokens: periods of 64 re-base twice
    const auto full = full_sequence_logits(config.model, w, ids);
    const auto ttt = TttOptions::for_inference(config);
    DecodeState state = start_decoding(config.model, ttt, w);
    ASSERT_EQ(state.segment, 64);
    const auto logits = read_in_pieces(config, ttt, w, state, ids, {1});
    EXPECT_TRUE(torch::allclose(logits, full, 1e-10, 1e-10)) << (logits - full).abs().max().item<double>();
  }
  Config config = deeper_meta_config();  // W 6, b 4, two suffix blocks
  config.model.rope_precision = RopePrecision::kFloat64;
  const auto w = ModelWeights::initialize(config.model, 7).to(torch::kFloat64);
  const auto tokens = random_tokens(40, 11);
  const auto eval = eval_path_logits(config, w, tokens);
  const auto ttt = TttOptions::for_inference(config);
  // One token at a time, and pieces of 3, 1 and 2 (pending reads of several tokens).
  for (const auto& pieces : std::vector<std::vector<int64_t>>{{1}, {3, 1, 2}}) {
    DecodeState state = start_decoding(config.model, ttt, w, 1, /*segment=*/8);
    const auto logits = read_in_pieces(config, ttt, w, state, tokens.slice(1, 0, 40), pieces);
    EXPECT_TRUE(torch::allclose(logits, eval, 1e-10, 1e-10))
        << "pieces of " << pieces[0] << ": " << (logits - eval).abs().max().item<double>();
  }
}

TEST(Decode, E2eFastWeightsChangeOnlyAtChunkBoundaries) {
  const Config config = tiny_meta_config();
  const auto w = ModelWeights::initialize(config.model, 7);
  const auto tokens = random_tokens(12, 2);
  const auto ttt = TttOptions::for_inference(config);
  DecodeState state = start_decoding(config.model, ttt, w);
  read_tokens(config.model, ttt, w, state, tokens.slice(1, 0, 4));  // chunk 0 read, its last target unknown
  auto before = state.fast.weights[0].clone();
  EXPECT_EQ(state.pending_ids.size(1), 4);
  read_tokens(config.model, ttt, w, state, tokens.slice(1, 4, 5));  // token 4 completes chunk 0's targets
  EXPECT_FALSE(torch::equal(before, state.fast.weights[0]));
  EXPECT_EQ(state.pending_ids.size(1), 1);
  auto after = state.fast.weights[0].clone();
  read_tokens(config.model, ttt, w, state, tokens.slice(1, 5, 8));  // inside chunk 1: no step
  EXPECT_TRUE(torch::equal(after, state.fast.weights[0]));
}

// TTT layers: the recurrent state read token by token (the primal form), in pieces that start and
// end inside mini-batches, and in one prefill equals the whole-sequence forward (the dual form over
// aligned mini-batches), in float64, for both inner models in both backbones.
TEST(Decode, TttLayersTokenByTokenAndInPiecesEqualTheFullForward) {
  torch::NoGradGuard no_grad;
  for (const auto block : ttt_layer_blocks()) {
    const Config config = ttt_layer_config(block, /*pre_conv=*/block != SeqModelingBlock::kTttMlpBase);
    const auto w = ModelWeights::initialize(config.model, 5).to(torch::kFloat64);
    const auto ttt = TttOptions::for_inference(config);
    const auto ids = random_tokens(13, 2).slice(1, 0, 13);
    const auto full = full_sequence_logits(config.model, w, ids);
    for (const auto& pieces : std::vector<std::vector<int64_t>>{{1}, {3, 5}, {6, 1}, {13}}) {
      // The last case also reads in prefill segments of 5 (segment ends inside mini-batches).
      DecodeState state = start_decoding(config.model, ttt, w, 1, pieces[0] == 13 ? 5 : 0);
      const auto logits = read_in_pieces(config, ttt, w, state, ids, pieces);
      EXPECT_TRUE(torch::allclose(logits, full, 1e-10, 1e-10))
          << to_string(block) << " pieces " << pieces[0] << ": max diff " << (logits - full).abs().max().item<double>();
      EXPECT_EQ(state.position, 13);
    }
  }
}

// The recurrent state is fixed in size: after 5 and after 45 tokens it holds the same tensors.
TEST(Decode, TttLayerStateDoesNotGrowWithTheContext) {
  torch::NoGradGuard no_grad;
  const Config config = ttt_layer_config(SeqModelingBlock::kTttMlp);
  const auto w = ModelWeights::initialize(config.model, 5);
  const auto ttt = TttOptions::for_inference(config);
  auto state_bytes = [&](int64_t n) {
    DecodeState state = start_decoding(config.model, ttt, w);
    read_tokens(config.model, ttt, w, state, random_tokens(n - 1, 3));
    int64_t bytes = 0;
    for (const auto& block : state.ttt_blocks)
      for (const auto* t : {&block.pre_conv_history, &block.layer.w1, &block.layer.b1, &block.layer.w2, &block.layer.b2,
                            &block.layer.acc_w1, &block.layer.acc_b1, &block.layer.acc_w2, &block.layer.acc_b2,
                            &block.layer.conv_q_history, &block.layer.conv_k_history})
        if (t->defined()) bytes += t->numel() * t->element_size();
    return bytes;
  };
  EXPECT_GT(state_bytes(5), 0);
  EXPECT_EQ(state_bytes(5), state_bytes(45));  // both one token into a mini-batch
}

// A fork advances independently of the state it was forked from, in any order: continuations read
// alternately from one prefix, one from the fork and one from the state, equal each read after the
// prefix from a fresh state, bit for bit (FA, SWA, TTT-E2E with a chunk pending at the fork, and
// TTT layers in both backbones). Forks that shared caches would read each other's tokens: the
// first pieces stay inside the pending chunk, so E2E's suffix windows are read after the other
// side wrote its token into the same slot.
TEST(Decode, ForkedStatesAdvanceIndependently) {
  torch::NoGradGuard no_grad;
  for (const Config& config :
       {pretrain_config(SeqModelingBlock::kSelfAttention), pretrain_config(SeqModelingBlock::kSlidingWindow),
        tiny_meta_config(), ttt_layer_config(SeqModelingBlock::kTttLinear),
        ttt_layer_config(SeqModelingBlock::kTttMlpBase)}) {
    const auto w = ModelWeights::initialize(config.model, 5);
    const auto ttt = TttOptions::for_inference(config);
    const std::string name = to_string(config.model.seq_modeling_block) + (ttt.enabled ? " with TTT" : "");
    const auto prefix = random_tokens(9, 3);  // 10 tokens: 2 into an E2E chunk of 4
    const auto a = random_tokens(9, 4).slice(1, 1);
    const auto b = a.remainder(10) + 1;  // a different token at every position (ids 1..10)
    auto fresh = [&](const torch::Tensor& continuation, DecodeState& s) {
      s = start_decoding(config.model, ttt, w);
      read_tokens(config.model, ttt, w, s, prefix);
      return read_in_pieces(config, ttt, w, s, continuation, {1, 2, 6});
    };
    DecodeState state = start_decoding(config.model, ttt, w);
    read_tokens(config.model, ttt, w, state, prefix);
    DecodeState fork = fork_decoding(state);
    std::vector<torch::Tensor> from_fork, from_state;
    for (const auto& [begin, end] : {std::pair<int64_t, int64_t>{0, 1}, {1, 3}, {3, 9}}) {
      from_fork.push_back(read_tokens(config.model, ttt, w, fork, a.slice(1, begin, end), /*all_logits=*/true));
      from_state.push_back(read_tokens(config.model, ttt, w, state, b.slice(1, begin, end), /*all_logits=*/true));
    }
    DecodeState fresh_a, fresh_b;
    EXPECT_TRUE(torch::equal(torch::cat(from_fork, 1), fresh(a, fresh_a))) << name << ": the fork";
    EXPECT_TRUE(torch::equal(torch::cat(from_state, 1), fresh(b, fresh_b))) << name << ": the state forked from";
    EXPECT_TRUE(torch::equal(fork.seen, fresh_a.seen)) << name;
    EXPECT_TRUE(torch::equal(state.seen, fresh_b.seen)) << name;
    EXPECT_EQ(fork.position, 19);
    // The tokens seen (the repetition penalty's) are the fork's own too.
    DecodeState start = start_decoding(config.model, ttt, w);
    read_tokens(config.model, ttt, w, start, torch::zeros({1, 1}, torch::kInt64));
    DecodeState forked = fork_decoding(start);
    read_tokens(config.model, ttt, w, forked, torch::full({1, 1}, 5, torch::kInt64));
    EXPECT_TRUE(forked.seen[0][5].item<bool>()) << name;
    EXPECT_FALSE(start.seen[0][5].item<bool>()) << name;
  }
}

// Inference: the decoding path (KV caches, one token at a time, prefill in segments) against the
// whole-sequence forward (FA, SWA) and against the evaluation path of the inner loop (E2E);
// sampling; generation reproducibility; the decoding-state file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "infer/decoder.h"
#include "infer/generate.h"
#include "infer/sampler.h"
#include "infer/state_file.h"
#include "model/transformer.h"
#include "support/tiny_model.h"
#include "ttt/sequence_loss.h"
#include "util/safetensors.h"

using namespace ttt;
using ttt::testing::random_batch;
using ttt::testing::tiny_meta_config;
using ttt::testing::tiny_model_config;

namespace {

Config pretrain_config(SeqModelingBlock block) {
  Config c;
  c.model = tiny_model_config();
  c.model.seq_modeling_block = block;
  c.model.prime = false;
  c.model.suffix_len = 0;
  c.model.mini_batch_size = 64;  // >= every test length: full attention is not chunk-local
  c.training.train_mode = TrainMode::kPretrain;
  return c;
}

// Tokens [1, T + 1]: BOS then random ids.
torch::Tensor random_tokens(int64_t T, uint64_t seed) {
  auto batch = random_batch(1, T, tiny_model_config().vocab_size, seed);
  return torch::cat({batch.input_ids, batch.targets.slice(1, T - 1)}, 1);
}

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
    auto step = chunk_step(cfg, w, ttt, state, prefix.slice(1, c * b, (c + 1) * b), targets.slice(1, c * b, (c + 1) * b),
                           mask.slice(1, c * b, (c + 1) * b), /*learn=*/c + 1 < T / b, /*create_graph=*/false);
    logits.push_back(step.logits.detach());
    nll.push_back(step.nll.detach());
  }
  const auto reference = meta_loss(cfg, w, Batch{inputs, targets, mask}, ttt, /*create_graph=*/false);
  EXPECT_TRUE(torch::equal(torch::cat(nll, 1), reference.token_nll));
  return torch::cat(logits, 1);
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what, double tol = 1e-4) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_TRUE(torch::allclose(a, b, tol, tol)) << what << ": max diff " << (a - b).abs().max().item<double>();
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()) + ".safetensors")).string();
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
  for (const auto& c : state.window_caches) EXPECT_EQ(c.k.size(1), config.model.sliding_window_size);
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
  expect_close(read_tokens(cfg, ttt, w, whole, tokens.slice(1, 0, 12), true), eval.slice(1, 0, 12), "prompt of 3 chunks");
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

TEST(Sampler, RepetitionPenaltyTopKTopP) {
  auto logits = torch::tensor({2.0, -1.0, 0.5, 3.0}, torch::kFloat64);
  auto seen = torch::tensor({true, true, false, false});
  auto penalised = apply_repetition_penalty(logits, seen, 2.0);
  EXPECT_TRUE(torch::allclose(penalised, torch::tensor({1.0, -2.0, 0.5, 3.0}, torch::kFloat64)));
  SamplingOptions o;
  o.top_k = 2;
  auto probs = sampling_distribution(logits, o);
  EXPECT_EQ(probs[1].item<double>(), 0.0);
  EXPECT_EQ(probs[2].item<double>(), 0.0);
  EXPECT_NEAR(probs.sum().item<double>(), 1.0, 1e-12);
  o.top_k = 0;
  o.top_p = 0.5;  // the most likely token alone holds e^3 / sum > 0.5
  probs = sampling_distribution(logits, o);
  EXPECT_EQ(probs[3].item<double>(), 1.0);
  o.top_p = 0.9;  // needs the two most likely
  probs = sampling_distribution(logits, o);
  EXPECT_GT(probs[0].item<double>(), 0.0);
  EXPECT_EQ(probs[2].item<double>(), 0.0);
  EXPECT_THROW(check_sampling_options(SamplingOptions{-1.0, 0, 1.0, 1.0}), std::invalid_argument);
}

TEST(Generate, FixedSeedReproducesAndSeedsDiffer) {
  const Config config = tiny_meta_config();
  const auto w = ModelWeights::initialize(config.model, 7);
  const auto ttt = TttOptions::for_inference(config);
  auto run = [&](uint64_t seed, SamplingOptions sampling) {
    DecodeState state = start_decoding(config.model, ttt, w);
    read_tokens(config.model, ttt, w, state, random_tokens(9, 1));
    GenerateOptions o;
    o.sampling = sampling;
    o.max_new_tokens = 40;
    o.seed = seed;
    return generate_tokens(config.model, ttt, w, state, o);
  };
  const SamplingOptions plain;
  EXPECT_EQ(run(1, plain), run(1, plain));
  EXPECT_NE(run(1, plain), run(2, plain));
  SamplingOptions greedy;
  greedy.temperature = 0;
  SamplingOptions top1;
  top1.top_k = 1;
  EXPECT_EQ(run(1, top1), run(3, greedy));
  EXPECT_EQ(run(1, greedy).size(), 40u);
}

TEST(Generate, Utf8StreamHoldsIncompleteCharacters) {
  Utf8Stream stream;
  EXPECT_EQ(stream.push("a\xE2"), "a");
  EXPECT_EQ(stream.push("\x82"), "");
  EXPECT_EQ(stream.push("\xAC!"), "\xE2\x82\xAC!");
  EXPECT_EQ(stream.push("\xF0\x9F"), "");
  EXPECT_EQ(stream.finish(), "\xF0\x9F");
  EXPECT_EQ(stream.push("\x80x"), "\x80x");  // a stray continuation byte is printed as is
}

TEST(StateFile, RoundTripGivesIdenticalContinuations) {
  for (const Config& config : {tiny_meta_config(), pretrain_config(SeqModelingBlock::kSelfAttention)}) {
    const auto w = ModelWeights::initialize(config.model, 7);
    const auto& cfg = config.model;
    const auto ttt = TttOptions::for_inference(config);
    DecodeState state = start_decoding(cfg, ttt, w);
    read_tokens(cfg, ttt, w, state, random_tokens(9, 1));  // 10 tokens: a partial chunk is pending
    const auto path = temp_path("ttt-state");
    save_decode_state(path, cfg, ttt, w, state);
    DecodeState loaded = load_decode_state(path, cfg, ttt, w);
    std::filesystem::remove(path);
    EXPECT_EQ(loaded.position, state.position);
    GenerateOptions o;
    o.max_new_tokens = 30;
    o.seed = 4;
    const auto expected = generate_tokens(cfg, ttt, w, state, o);
    EXPECT_EQ(generate_tokens(cfg, ttt, w, loaded, o), expected) << to_string(cfg.seq_modeling_block);
    EXPECT_TRUE(torch::equal(loaded.last_logits, state.last_logits));
  }
}

TEST(StateFile, RejectsAnotherModel) {
  const Config config = tiny_meta_config();
  const auto w = ModelWeights::initialize(config.model, 7);
  const auto ttt = TttOptions::for_inference(config);
  DecodeState state = start_decoding(config.model, ttt, w);
  read_tokens(config.model, ttt, w, state, random_tokens(5, 1));
  const auto path = temp_path("ttt-state-other");
  save_decode_state(path, config.model, ttt, w, state);
  auto message = [&](const Config& c, const TttOptions& options, const ModelWeights& weights) -> std::string {
    try {
      load_decode_state(path, c.model, options, weights);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  };
  const std::string other_weights = message(config, ttt, ModelWeights::initialize(config.model, 8));
  EXPECT_NE(other_weights.find("different weights"), std::string::npos) << other_weights;
  Config wider = config;
  wider.model.sliding_window_size = 12;
  const std::string other_config = message(wider, TttOptions::for_inference(wider), w);
  EXPECT_NE(other_config.find("model.sliding_window_size is 8 in the state, 12 here"), std::string::npos) << other_config;
  EXPECT_EQ(other_config.find('\n'), std::string::npos);
  const std::string no_ttt = message(config, TttOptions::for_inference(config, false), w);
  EXPECT_NE(no_ttt.find("decode.test_time_training"), std::string::npos) << no_ttt;
  EXPECT_EQ(message(config, ttt, w), "");
  // Fields kept only for parity with the official configuration are not part of the fingerprint.
  Config parity = config;
  parity.model.force_flash = true;
  parity.model.remat_mlp = "nothing_saveable";
  EXPECT_EQ(message(parity, ttt, w), "");
  std::filesystem::remove(path);
}

TEST(StateFile, DamagedFilesAreOneLineErrorsNamingTheFile) {
  // bad-input.md #6: a huge or non-numeric position overflowed or printed a raw LibTorch error
  // with its backtrace; every tensor of a state is now checked against the model's state.
  for (const Config& config : {tiny_meta_config(), pretrain_config(SeqModelingBlock::kSelfAttention)}) {
    SCOPED_TRACE(to_string(config.model.seq_modeling_block));
    const auto w = ModelWeights::initialize(config.model, 7);
    const auto& cfg = config.model;
    const auto ttt = TttOptions::for_inference(config);
    DecodeState state = start_decoding(cfg, ttt, w);
    read_tokens(cfg, ttt, w, state, random_tokens(9, 1));  // 10 tokens: a partial chunk is pending
    const auto path = temp_path("ttt-state-damaged");
    save_decode_state(path, cfg, ttt, w, state);
    const SafetensorsFile good = load_safetensors(path);
    // Each case edits the file, then loading it must fail with a line that names `part`.
    using Edit = std::function<void(SafetensorsFile&)>;
    const std::vector<std::pair<Edit, std::string>> cases = {
        {[](SafetensorsFile& f) { f.metadata["position"] = "9223372036854775807"; }, "position"},
        {[](SafetensorsFile& f) { f.metadata["position"] = "ten"; }, "position"},
        {[](SafetensorsFile& f) { f.metadata["position"] = "-1"; }, "position"},
        {[](SafetensorsFile& f) { f.metadata["position"] = "11"; }, "shape"},  // does not match the tensors
        {[](SafetensorsFile& f) { f.tensors.erase("seen"); }, "seen"},
        {[](SafetensorsFile& f) { f.tensors["seen"] = f.tensors["seen"].to(torch::kFloat32); }, "seen"},
        {[](SafetensorsFile& f) { f.tensors["cache.0.k"] = f.tensors["cache.0.k"].slice(1, 1); }, "cache.0.k"},
        {[](SafetensorsFile& f) { f.tensors["cache.0.v"] = f.tensors["cache.0.v"].to(torch::kFloat64); }, "cache.0.v"},
        {[](SafetensorsFile& f) { f.tensors["cache.1.k"].view(-1)[0] = std::nan(""); }, "non-finite"},
        {[](SafetensorsFile& f) { f.tensors["last_logits"] = f.tensors["last_logits"].unsqueeze(0); }, "last_logits"},
        {[](SafetensorsFile& f) { f.tensors["extra"] = torch::zeros({2}); }, "extra"},
        {[](SafetensorsFile& f) { f.tensors.erase("last_logits"); }, "last_logits"},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
      SCOPED_TRACE(cases[i].second + " (case " + std::to_string(i) + ")");
      SafetensorsFile edited = good;
      for (auto& [name, t] : edited.tensors) t = t.clone();
      cases[i].first(edited);
      std::vector<std::pair<std::string, torch::Tensor>> tensors(edited.tensors.begin(), edited.tensors.end());
      save_safetensors(path, tensors, edited.metadata);
      try {
        load_decode_state(path, cfg, ttt, w);
        ADD_FAILURE() << "expected an error";
      } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.find('\n'), std::string::npos) << what;
        EXPECT_NE(what.find(path), std::string::npos) << what;
        EXPECT_NE(what.find(cases[i].second), std::string::npos) << what;
      }
    }
    if (ttt.enabled) {  // the pending chunk's tensors are checked too
      SafetensorsFile edited = good;
      edited.tensors["pending.ids"] = torch::full_like(edited.tensors["pending.ids"], 1000);
      std::vector<std::pair<std::string, torch::Tensor>> tensors(edited.tensors.begin(), edited.tensors.end());
      save_safetensors(path, tensors, edited.metadata);
      EXPECT_THROW(load_decode_state(path, cfg, ttt, w), std::runtime_error);
    }
    std::filesystem::remove(path);
  }
}

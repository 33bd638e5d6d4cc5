// Decoding-state files (infer/state_file): a round trip continues identically, a state of another
// model is refused, and damaged files are one-line errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "infer/decoder.h"
#include "infer/generate.h"
#include "infer/state_file.h"
#include "support/decoding.h"
#include "support/tiny_model.h"
#include "util/safetensors.h"

using namespace ttt;
using ttt::testing::pretrain_config;
using ttt::testing::random_tokens;
using ttt::testing::tiny_meta_config;
using ttt::testing::ttt_layer_config;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()) + ".safetensors")).string();
}

}  // namespace

TEST(StateFile, RoundTripGivesIdenticalContinuations) {
  // Mini-batches (chunks) of 4: 10 tokens end inside one (a partial chunk is pending; TTT layers
  // save their gradient sums), 12 at a boundary. The 70 tokens generated cross the window caches'
  // first period (64), so the loaded caches re-base as the unbroken ones do.
  for (const Config& config :
       {tiny_meta_config(), pretrain_config(SeqModelingBlock::kSlidingWindow),
        pretrain_config(SeqModelingBlock::kSelfAttention), ttt_layer_config(SeqModelingBlock::kTttMlp),
        ttt_layer_config(SeqModelingBlock::kTttLinearBase, false)})
    for (const int64_t tokens : {10, 12}) {
      const auto w = ModelWeights::initialize(config.model, 7);
      const auto& cfg = config.model;
      const auto ttt = TttOptions::for_inference(config);
      DecodeState state = start_decoding(cfg, ttt, w);
      read_tokens(cfg, ttt, w, state, random_tokens(tokens - 1, 1));
      const auto path = temp_path("ttt-state");
      save_decode_state(path, cfg, ttt, w, state);
      DecodeState loaded = load_decode_state(path, cfg, ttt, w);
      std::filesystem::remove(path);
      EXPECT_EQ(loaded.position, state.position);
      GenerateOptions o;
      o.max_new_tokens = 70;
      o.seed = 4;
      const auto expected = generate_tokens(cfg, ttt, w, state, o);
      EXPECT_EQ(generate_tokens(cfg, ttt, w, loaded, o), expected)
          << to_string(cfg.seq_modeling_block) << " " << tokens;
      EXPECT_TRUE(torch::equal(loaded.last_logits, state.last_logits))
          << to_string(cfg.seq_modeling_block) << " " << tokens;
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
  EXPECT_NE(other_config.find("model.sliding_window_size is 8 in the state, 12 here"), std::string::npos)
      << other_config;
  EXPECT_EQ(other_config.find('\n'), std::string::npos);
  const std::string no_ttt = message(config, TttOptions::for_inference(config, false), w);
  EXPECT_NE(no_ttt.find("decode.test_time_training"), std::string::npos) << no_ttt;
  EXPECT_EQ(message(config, ttt, w), "");
  // Fields kept only for parity with the official configuration are not part of the fingerprint.
  Config parity = config;
  parity.model.force_flash = true;
  parity.model.remat_mlp = "nothing_saveable";
  EXPECT_EQ(message(parity, ttt, w), "");
  // Nor is recomputation, which changes training memory, never what decoding computes.
  Config remat = config;
  remat.model.remat_prefix_block = "none";
  remat.model.remat_block = "nothing_saveable";
  remat.model.remat_mini_batch_group_size = 2;
  EXPECT_EQ(message(remat, ttt, w), "");
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

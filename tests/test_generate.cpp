// Sampling and generation (infer/sampler, infer/generate): the sampling distribution, seeded
// reproducibility, and UTF-8 streaming.
#include <gtest/gtest.h>

#include <cmath>

#include "infer/decoder.h"
#include "infer/generate.h"
#include "infer/sampler.h"
#include "support/decoding.h"
#include "support/tiny_model.h"

using namespace ttt;
using ttt::testing::random_tokens;
using ttt::testing::tiny_meta_config;

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

TEST(Sampler, LogitsHoldingNanOrPositiveInfinityAreAnError) {
  // Found by fuzz_decode_state: a state of absurd but finite values decoded to NaN logits.
  std::mt19937_64 rng(0);
  const SamplingOptions greedy{0.0, 0, 1.0, 1.0};
  for (double bad : {std::nan(""), static_cast<double>(INFINITY)}) {
    auto logits = torch::tensor({0.5, bad, 1.0});
    EXPECT_THROW(sample_next_token(logits, torch::Tensor(), SamplingOptions{}, rng), std::runtime_error);
    EXPECT_THROW(sample_next_token(logits, torch::Tensor(), greedy, rng), std::runtime_error);
  }
  // -inf rules a token out and is fine.
  EXPECT_EQ(sample_next_token(torch::tensor({0.5, -static_cast<double>(INFINITY), 1.0}), torch::Tensor(), greedy, rng),
            2);
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

// The needle-in-a-haystack suite (infer/needle): prompt layout, pass keys and their tokenization,
// the window classification, and the teacher-forced answer score against the whole-sequence
// forward (full attention) and the evaluation path (TTT-E2E).
#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>

#include "infer/decoder.h"
#include "infer/needle.h"
#include "model/transformer.h"
#include "support/decoding.h"
#include "support/tiny_model.h"
#include "tokenizer/tokenizer.h"
#include "ttt/sequence_loss.h"

using namespace ttt;
using ttt::testing::pretrain_config;
using ttt::testing::tiny_meta_config;

namespace {

// A needle, query and answer of small ids (the tiny model's vocabulary is 11).
NeedleText small_text() { return NeedleText{{7, 8, 9}, {10, 2}, {3, 4, 5}}; }

std::vector<int64_t> counting(int64_t n, int64_t from = 100) {
  std::vector<int64_t> v(n);
  std::iota(v.begin(), v.end(), from);
  return v;
}

// The teacher-forced score the slow way: the NLL and argmax of every answer token read off the
// logits of the whole prompt read at once.
AnswerScore score_from_logits(const torch::Tensor& logits, const NeedlePrompt& prompt) {
  AnswerScore s;
  const auto length = static_cast<int64_t>(prompt.ids.size());
  const auto log_probs = torch::log_softmax(logits.to(torch::kFloat64), -1);
  for (int64_t i = prompt.answer_begin; i < length; ++i) {
    const auto row = log_probs[0][i - 1];
    s.nll -= row[prompt.ids[i]].item<double>();
    s.correct_at.push_back(row.argmax().item<int64_t>() == prompt.ids[i]);
    s.correct += s.correct_at.back();
    ++s.tokens;
  }
  return s;
}

torch::Tensor ids_tensor(const std::vector<int64_t>& ids) { return torch::tensor(ids, torch::kInt64).view({1, -1}); }

}  // namespace

TEST(Needle, PromptHoldsTheNeedleAtItsDepthAndIsExactlyTheLength) {
  const NeedleText text = small_text();
  const auto haystack = counting(40);
  EXPECT_EQ(haystack_size(text, 30), 30 - 1 - 3 - 2 - 3);
  for (double depth : {0.0, 0.3, 0.5, 1.0}) {
    const auto p = build_needle_prompt(text, haystack, /*bos_id=*/0, 30, depth);
    ASSERT_EQ(p.ids.size(), 30u) << depth;
    const int64_t h = 21, split = std::llround(depth * h);
    EXPECT_EQ(p.ids[0], 0);
    EXPECT_EQ(p.needle_begin, 1 + split) << depth;
    EXPECT_EQ(p.needle_end, p.needle_begin + 3);
    EXPECT_EQ(std::vector<int64_t>(p.ids.begin() + p.needle_begin, p.ids.begin() + p.needle_end), text.needle);
    // The haystack's first h tokens, in order, around the needle.
    std::vector<int64_t> hay(p.ids.begin() + 1, p.ids.begin() + p.needle_begin);
    hay.insert(hay.end(), p.ids.begin() + p.needle_end, p.ids.begin() + p.answer_begin - 2);
    EXPECT_EQ(hay, counting(h)) << depth;
    EXPECT_EQ(std::vector<int64_t>(p.ids.begin() + p.answer_begin - 2, p.ids.begin() + p.answer_begin), text.query);
    EXPECT_EQ(p.answer_begin, 27);
    EXPECT_EQ(std::vector<int64_t>(p.ids.begin() + p.answer_begin, p.ids.end()), text.answer);
  }
  EXPECT_THROW(haystack_size(text, 8), std::invalid_argument);  // 9 tokens without any haystack
  EXPECT_NO_THROW(build_needle_prompt(text, {}, 0, 9, 0.5));
  EXPECT_THROW(build_needle_prompt(text, counting(5), 0, 30, 0.5), std::invalid_argument);  // haystack too short
}

TEST(Needle, PassKeysAreFixedDigitStringsThatDifferAcrossTrials) {
  EXPECT_EQ(pass_key(3, 1, 5), pass_key(3, 1, 5));
  EXPECT_NE(pass_key(3, 1, 5), pass_key(3, 2, 5));
  EXPECT_NE(pass_key(3, 1, 5), pass_key(4, 1, 5));
  for (int64_t t = 0; t < 50; ++t) {
    const std::string key = pass_key(0, t, 7);
    ASSERT_EQ(key.size(), 7u);
    EXPECT_NE(key[0], '0');
    for (char c : key) EXPECT_TRUE(c >= '0' && c <= '9') << key;
    const std::string letters = pass_key(0, t, 7, "letters");
    ASSERT_EQ(letters.size(), 7u);
    for (char c : letters) EXPECT_TRUE(c >= 'a' && c <= 'z') << letters;
  }
  EXPECT_NE(pass_key(3, 1, 5, "letters"), pass_key(3, 2, 5, "letters"));
  EXPECT_EQ(pass_key(3, 1, 5), pass_key(3, 1, 5, "digits"));
}

TEST(Needle, TextIsTokenizedAsItReadsInThePrompt) {
  std::vector<std::unique_ptr<Tokenizer>> tokenizers;
  tokenizers.push_back(load_tokenizer("byte"));
  const std::string llama3 = TTT_SOURCE_DIR "/data/tokenizer-llama3/tokenizer.json";
  if (std::filesystem::exists(llama3)) tokenizers.push_back(load_tokenizer(llama3));
  for (const auto& tokenizer : tokenizers) {
    const std::string key = pass_key(0, 0, 5);
    const NeedleText text = needle_text(*tokenizer, key);
    auto to32 = [](const std::vector<int64_t>& v) { return std::vector<int32_t>(v.begin(), v.end()); };
    EXPECT_EQ(tokenizer->decode(to32(text.answer)), " " + key) << tokenizer->name();
    EXPECT_NE(tokenizer->decode(to32(text.needle)).find("The pass key is " + key + "."), std::string::npos);
    // Query then answer is exactly how the whole text tokenizes.
    auto joined = text.query;
    joined.insert(joined.end(), text.answer.begin(), text.answer.end());
    const auto whole = tokenizer->encode("\nWhat is the pass key? The pass key is " + key);
    EXPECT_EQ(to32(joined), whole) << tokenizer->name();
    // The repeated form states the key twice, the single form once; the query is the same.
    const NeedleText single = needle_text(*tokenizer, key, "single");
    const auto decoded = tokenizer->decode(to32(text.needle)), once = tokenizer->decode(to32(single.needle));
    EXPECT_EQ(decoded, "\nThe pass key is " + key + ". Remember it. " + key + " is the pass key.\n");
    EXPECT_EQ(once, "\nThe pass key is " + key + ". Remember it.\n");
    EXPECT_EQ(single.query, text.query);
    EXPECT_EQ(single.answer, text.answer);
  }
}

TEST(Needle, WindowSaysWhetherTheNeedleIsVisibleWhenTheAnswerIsRead) {
  Config config = pretrain_config(SeqModelingBlock::kSlidingWindow);  // window 8
  NeedlePrompt p;
  p.answer_begin = 20;  // read from position 19: keys 12..19 visible
  p.needle_begin = 12, p.needle_end = 15;
  EXPECT_EQ(needle_window(config.model, p), "inside");
  p.needle_begin = 11;
  EXPECT_EQ(needle_window(config.model, p), "partly");
  p.needle_begin = 9, p.needle_end = 12;
  EXPECT_EQ(needle_window(config.model, p), "outside");
  config.model.seq_modeling_block = SeqModelingBlock::kSelfAttention;
  EXPECT_EQ(needle_window(config.model, p), "none");
}

TEST(Needle, ScoreEqualsTheWholeSequenceForwardForFullAttention) {
  torch::NoGradGuard no_grad;
  const Config config = pretrain_config(SeqModelingBlock::kSelfAttention);
  const auto w = ModelWeights::initialize(config.model, 5);
  const auto ttt = TttOptions::for_inference(config);
  const auto haystack = torch::randint(1, 11, {40}, torch::kInt64);
  const auto prompt = build_needle_prompt(
      small_text(), std::vector<int64_t>(haystack.data_ptr<int64_t>(), haystack.data_ptr<int64_t>() + 40), 0, 33, 0.4);
  const auto score = score_needle_prompt(config.model, ttt, w, prompt);
  const auto expected = score_from_logits(full_sequence_logits(config.model, w, ids_tensor(prompt.ids)), prompt);
  EXPECT_EQ(score.tokens, 3);
  EXPECT_EQ(score.correct, expected.correct);
  EXPECT_EQ(score.correct_at, expected.correct_at);
  EXPECT_NEAR(score.nll, expected.nll, 1e-4);
}

TEST(Needle, ScoreEqualsTheEvaluationPathForTttE2E) {
  torch::NoGradGuard no_grad;
  const Config config = tiny_meta_config();  // window 8, chunks of 4
  const auto w = ModelWeights::initialize(config.model, 9);
  const auto ttt = TttOptions::for_inference(config);
  ASSERT_TRUE(ttt.enabled);
  torch::manual_seed(2);
  const auto haystack = torch::randint(1, 11, {40}, torch::kInt64);
  const std::vector<int64_t> hay(haystack.data_ptr<int64_t>(), haystack.data_ptr<int64_t>() + 40);
  // 29 tokens: the 28 targets form 7 chunks, the answer's 3 tokens straddle chunks 6 and 7.
  const auto prompt = build_needle_prompt(small_text(), hay, 0, 29, 0.25);
  const auto score = score_needle_prompt(config.model, ttt, w, prompt);
  // The evaluation path (inner steps on every chunk before the one read), its token NLL summed
  // over the answer's targets.
  const auto ids = ids_tensor(prompt.ids);
  const int64_t T = 28;
  const auto inputs = ids.slice(1, 0, T), targets = ids.slice(1, 1, T + 1);
  torch::AutoGradMode inner_steps(true);  // evaluation takes its inner steps with autograd
  const auto loss = sequence_loss(config.model, w, Batch{inputs, targets, (targets != 0).to(torch::kFloat32)}, ttt);
  const double expected_nll = loss.token_nll.slice(1, prompt.answer_begin - 1, T).sum().item<double>();
  EXPECT_EQ(score.tokens, 3);
  EXPECT_NEAR(score.nll, expected_nll, 1e-4);
  // The argmax, against the whole prompt read at once.
  DecodeState state = start_decoding(config.model, ttt, w);
  const auto logits = read_tokens(config.model, ttt, w, state, ids, /*all_logits=*/true);
  EXPECT_EQ(score.correct, score_from_logits(logits, prompt).correct);
  // Test-time training changes the score: the inner steps on the haystack matter.
  const auto frozen = score_needle_prompt(config.model, TttOptions::for_inference(config, false), w, prompt);
  EXPECT_GT(std::abs(frozen.nll - score.nll), 1e-4);
}

TEST(Needle, BadOptionsAreClearErrors) {
  NeedleOptions o{{128}, {0.5}};
  EXPECT_NO_THROW(check_needle_options(o));
  auto message = [](NeedleOptions bad) {
    try {
      check_needle_options(bad);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  NeedleOptions bad = o;
  bad.depths = {1.5};
  EXPECT_NE(message(bad).find("depth"), std::string::npos);
  bad = o;
  bad.lengths = {};
  EXPECT_NE(message(bad).find("length"), std::string::npos);
  bad = o;
  bad.trials = 0;
  EXPECT_NE(message(bad).find("trials"), std::string::npos);
  bad = o;
  bad.key_digits = 0;
  EXPECT_NE(message(bad).find("digits"), std::string::npos);
  bad = o;
  bad.key_kind = "hex";
  EXPECT_NE(message(bad).find("pass-key kind"), std::string::npos);
  bad = o;
  bad.needle_form = "twice";
  EXPECT_NE(message(bad).find("needle form"), std::string::npos);
}

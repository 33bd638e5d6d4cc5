// The recall task (infer/recall): prompt layout, the scores against the whole-sequence forward
// (full attention) and the evaluation path (TTT-E2E), and the suite's cells and errors.
#include <gtest/gtest.h>

#include <numeric>

#include "infer/decoder.h"
#include "infer/recall.h"
#include "model/transformer.h"
#include "support/decoding.h"
#include "support/tiny_model.h"
#include "ttt/sequence_loss.h"

using namespace ttt;
using ttt::testing::pretrain_config;
using ttt::testing::tiny_meta_config;

namespace {

torch::Tensor ids_tensor(const std::vector<int64_t>& ids) { return torch::tensor(ids, torch::kInt64).view({1, -1}); }

// Tokens of the tiny vocabulary (1..10), fixed by the seed.
std::vector<int64_t> small_text(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  const auto t = torch::randint(1, 11, {n}, torch::kInt64);
  return {t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n};
}

// Summed NLL and argmax hits of ids[first, last) from per-position log-probabilities [1, T, V]
// (position i predicts token i + 1).
std::pair<double, int64_t> score_from(const torch::Tensor& log_probs, const std::vector<int64_t>& ids, int64_t first,
                                      int64_t last) {
  double nll = 0;
  int64_t correct = 0;
  for (int64_t i = first; i < last; ++i) {
    const auto row = log_probs[0][i - 1];
    nll -= row[ids[i]].item<double>();
    correct += row.argmax().item<int64_t>() == ids[i];
  }
  return {nll, correct};
}

}  // namespace

TEST(Recall, PromptsHoldThePassageTwiceOrItsContinuation) {
  std::vector<int64_t> text(4 + 3 + 4 + 2);
  std::iota(text.begin(), text.end(), 100);
  const auto p = build_recall_prompts(text, /*bos_id=*/1, /*passage=*/4, /*gap=*/3);
  using V = std::vector<int64_t>;
  EXPECT_EQ(p.repeat, (V{1, 100, 101, 102, 103, 104, 105, 106, 100, 101, 102, 103}));
  EXPECT_EQ(p.control, (V{1, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110}));
  EXPECT_THROW(build_recall_prompts(V(10, 5), 1, 4, 3), std::invalid_argument);
}

TEST(Recall, ScoresEqualTheWholeSequenceForwardForFullAttention) {
  torch::NoGradGuard no_grad;
  const Config config = pretrain_config(SeqModelingBlock::kSelfAttention);
  const auto w = ModelWeights::initialize(config.model, 5);
  const auto ttt = TttOptions::for_inference(config);
  const int64_t L = 9, G = 5;
  const auto prompts = build_recall_prompts(small_text(2 * L + G, 3), 0, L, G);
  const auto s = score_recall_prompts(config.model, ttt, w, prompts, L);
  auto log_probs = [&](const std::vector<int64_t>& ids) {
    return torch::log_softmax(full_sequence_logits(config.model, w, ids_tensor(ids)).to(torch::kFloat64), -1);
  };
  const int64_t n = 1 + 2 * L + G;
  const double first = score_from(log_probs(prompts.repeat), prompts.repeat, 2, 1 + L).first;
  const auto [repeat, repeat_correct] = score_from(log_probs(prompts.repeat), prompts.repeat, n - L + 1, n);
  const auto [control, control_correct] = score_from(log_probs(prompts.control), prompts.control, n - L + 1, n);
  EXPECT_EQ(s.tokens, L - 1);
  EXPECT_NEAR(s.first_nll, first, 1e-4);
  EXPECT_NEAR(s.repeat_nll, repeat, 1e-4);
  EXPECT_NEAR(s.control_nll, control, 1e-4);
  EXPECT_EQ(s.repeat_correct, repeat_correct);
  EXPECT_EQ(s.control_correct, control_correct);
  // The two prompts are read from one reading of their shared start, which they must have.
  auto differ = prompts;
  const int64_t last_shared = n - L - 1;  // the gap's last token
  differ.control[last_shared] = (differ.control[last_shared] + 1) % config.model.vocab_size;
  EXPECT_THROW(score_recall_prompts(config.model, ttt, w, differ, L), std::invalid_argument);
  differ = prompts;
  differ.control.pop_back();
  EXPECT_THROW(score_recall_prompts(config.model, ttt, w, differ, L), std::invalid_argument);
  EXPECT_THROW(score_recall_prompts(config.model, ttt, w, prompts, -1), std::invalid_argument);
}

TEST(Recall, ScoresEqualTheEvaluationPathForTttE2E) {
  const Config config = tiny_meta_config();  // window 8, chunks of 4
  const auto w = ModelWeights::initialize(config.model, 9);
  const auto ttt = TttOptions::for_inference(config);
  ASSERT_TRUE(ttt.enabled);
  // 1 + 2 * 7 + 6 = 21 tokens: 20 targets in 5 chunks; the gap read separately ends inside a chunk.
  const int64_t L = 7, G = 6;
  const auto prompts = build_recall_prompts(small_text(2 * L + G, 4), 0, L, G);
  RecallScore s;
  {
    torch::NoGradGuard no_grad;
    s = score_recall_prompts(config.model, ttt, w, prompts, L);
  }
  auto token_nll = [&](const std::vector<int64_t>& ids) {
    const auto t = ids_tensor(ids);
    const int64_t T = t.size(1) - 1;
    const auto inputs = t.slice(1, 0, T), targets = t.slice(1, 1, T + 1);
    torch::AutoGradMode inner_steps(true);  // evaluation takes its inner steps with autograd
    return sequence_loss(config.model, w, Batch{inputs, targets, (targets != 0).to(torch::kFloat32)}, ttt)
        .token_nll.detach();
  };
  // token_nll[i] is the NLL of token i + 1.
  const int64_t n = 1 + 2 * L + G;
  const auto repeat = token_nll(prompts.repeat), control = token_nll(prompts.control);
  EXPECT_NEAR(s.first_nll, repeat.slice(1, 1, L).sum().item<double>(), 1e-4);
  EXPECT_NEAR(s.repeat_nll, repeat.slice(1, n - L, n - 1).sum().item<double>(), 1e-4);
  EXPECT_NEAR(s.control_nll, control.slice(1, n - L, n - 1).sum().item<double>(), 1e-4);
  // The argmax hits, against the whole prompt read at once through the decoder.
  auto hits = [&](const std::vector<int64_t>& ids) {
    torch::NoGradGuard no_grad;
    DecodeState state = start_decoding(config.model, ttt, w);
    const auto logits = read_tokens(config.model, ttt, w, state, ids_tensor(ids), /*all_logits=*/true);
    return score_from(torch::log_softmax(logits.to(torch::kFloat64), -1), ids, n - L + 1, n).second;
  };
  EXPECT_EQ(s.repeat_correct, hits(prompts.repeat));
  EXPECT_EQ(s.control_correct, hits(prompts.control));
  // Test-time training changes the score: the inner steps on what was read matter.
  torch::NoGradGuard no_grad;
  const auto frozen = score_recall_prompts(config.model, TttOptions::for_inference(config, false), w, prompts, L);
  EXPECT_GT(std::abs(frozen.repeat_nll - s.repeat_nll), 1e-4);
}

TEST(Recall, SuiteCellsSayHowFarBackTheCopyIsAndRefuseBadOptions) {
  torch::NoGradGuard no_grad;
  const Config config = pretrain_config(SeqModelingBlock::kSlidingWindow);  // window 8
  const auto w = ModelWeights::initialize(config.model, 6);
  const auto ttt = TttOptions::for_inference(config);
  VectorTokenSource text(small_text(200, 8), "random tokens");
  RecallOptions options;
  options.passage = 4;
  options.gaps = {0, 4, 10};
  options.trials = 3;
  int64_t seen = 0;
  const auto cells = run_recall_suite(config.model, ttt, w, 0, text, options, [&](const RecallCell&) { ++seen; });
  ASSERT_EQ(cells.size(), 3u);
  EXPECT_EQ(seen, 3);
  const std::vector<std::pair<int64_t, std::string>> expected{{4, "inside"}, {8, "inside"}, {14, "outside"}};
  for (size_t i = 0; i < cells.size(); ++i) {
    EXPECT_EQ(cells[i].gap, options.gaps[i]);
    EXPECT_EQ(cells[i].distance, expected[i].first);
    EXPECT_EQ(cells[i].window, expected[i].second);
    EXPECT_EQ(cells[i].trials, 3);
    // The same passages at every gap: their first reading does not depend on it.
    EXPECT_EQ(cells[i].first_nll, cells[0].first_nll);
    EXPECT_GE(cells[i].repeat_accuracy, 0.0);
    EXPECT_LE(cells[i].repeat_accuracy, 1.0);
  }
  // Repeat and control differ: they read different text.
  EXPECT_NE(cells[0].repeat_nll, cells[0].control_nll);
  // Trials read different stretches of the text: one trial alone scores otherwise than three.
  auto one = options;
  one.trials = 1;
  EXPECT_NE(run_recall_suite(config.model, ttt, w, 0, text, one)[0].first_nll, cells[0].first_nll);
  auto fa = config;
  fa.model.seq_modeling_block = SeqModelingBlock::kSelfAttention;
  options.gaps = {0};
  EXPECT_EQ(run_recall_suite(fa.model, ttt, ModelWeights::initialize(fa.model, 6), 0, text, options)[0].window, "none");

  auto bad = options;
  bad.passage = 1;
  EXPECT_THROW(check_recall_options(bad), std::invalid_argument);
  bad = options;
  bad.gaps = {};
  EXPECT_THROW(check_recall_options(bad), std::invalid_argument);
  bad.gaps = {-1};
  EXPECT_THROW(check_recall_options(bad), std::invalid_argument);
  bad = options;
  bad.trials = 0;
  EXPECT_THROW(check_recall_options(bad), std::invalid_argument);
  bad = options;
  bad.gaps = {200};
  EXPECT_THROW(run_recall_suite(config.model, ttt, w, 0, text, bad), std::invalid_argument);
}

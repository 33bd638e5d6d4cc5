// Evaluation (train/evaluator): the reference's evaluation batches, and weights that diverge are
// an error before any output is written.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "data/dataset.h"
#include "model/weights.h"
#include "support/test_util.h"
#include "support/tiny_model.h"
#include "train/evaluator.h"

using namespace ttt;
namespace fs = std::filesystem;

namespace {

Config dummy_eval_config() {
  Config c = ttt::testing::tiny_meta_config();
  c.model.vocab_size = c.model.output_size = 32;
  c.training.dummy_dataset = true;
  c.training.eval_batch_size = 2;
  c.training.global_batch_size = 6;
  c.training.accum_steps = 3;
  return c;
}

}  // namespace

TEST(Evaluator, EvaluatesWholeBatchesOfTheReferencesSize) {
  const Config c = dummy_eval_config();
  ASSERT_EQ(eval_batch_size(c.training), 8);  // max(2, 4 * 6 / 3)
  const auto w = ModelWeights::initialize(c.model, 3);
  ProcessGroup one_process;
  const EvalResult r = evaluate(c, w, TttOptions::for_inference(c), torch::kCPU, one_process);
  // The dummy eval split holds (T + 1) * 32 + 1 tokens: 34 samples of T = 12, four batches of 8
  // and 2 samples of a partial batch, dropped.
  EXPECT_EQ(r.num_sequences, 4 * 8);
  EXPECT_EQ(r.num_dropped, 2);
  EXPECT_EQ(static_cast<int64_t>(r.nll_by_position.size()), c.training.seq_length);
  EXPECT_TRUE(std::isfinite(r.loss));
}

TEST(Evaluator, NonFiniteWeightsAreAnErrorAndWriteNothing) {
  // bad-input.md #16: NaN weights once gave eval.json with "loss": null.
  Config c = dummy_eval_config();
  c.training.exp_name = "nan";
  const auto dir = ttt::testing::fresh_temp_dir("evaluator");
  auto w = ModelWeights::initialize(c.model, 3);
  w.tensors()[0].view(-1)[0] = std::nan("");
  ttt::testing::expect_one_line_error(
      [&] {
        ProcessGroup one_process;
        evaluate_and_report(c, w, TttOptions::for_inference(c), torch::kCPU, 0, dir / "run", one_process);
      },
      {"non-finite loss"});
  EXPECT_FALSE(fs::exists(dir / "run" / "eval.json"));
  fs::remove_all(dir);
}

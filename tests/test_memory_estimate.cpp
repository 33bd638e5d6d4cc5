// The per-rank training-memory estimate of `ttt info --world-size`: its fixed parts equal the bytes
// of the tensors a real model and optimizer allocate; the activation part scales as the shapes say
// (per-rank batch, recomputation); sizes parse and bad input is refused naming it. How close the
// activation part comes to a measured peak is a benchmark (scripts/bench_memory.sh), not a test.
#include <gtest/gtest.h>

#include "config/loader.h"
#include "model/layers.h"
#include "model/piecewise_recompute.h"
#include "model/weights.h"
#include "support/test_util.h"
#include "train/memory_estimate.h"
#include "train/outer_optimizer.h"

using namespace ttt;
using ttt::testing::expect_one_line_error;

namespace {

Config tiny(const std::string& variant, std::vector<std::string> words = {}) {
  words.insert(words.begin(), "+experiment=tiny/pretrain/pretrain-tiny-" + variant);
  return load_config(words);
}

double bytes_of(const std::vector<torch::Tensor>& tensors) {
  double total = 0;
  for (const auto& t : tensors) total += static_cast<double>(t.numel() * t.element_size());
  return total;
}

}  // namespace

TEST(MemoryEstimate, FixedPartsAreTheBytesOfTheTensorsARunAllocates) {
  for (const char* variant : {"e2e", "fa"}) {
    SCOPED_TRACE(variant);
    const Config config = tiny(variant);
    auto weights = ModelWeights::initialize(config.model, 0, scalar_type(config.model.param_dtype), torch::kCPU);
    OuterOptimizer optimizer(config.training.optimizer_outer, config.training.spec_outer, weights);
    for (const auto& p : optimizer.trainable()) p.mutable_grad() = torch::zeros_like(p);
    optimizer.step(1e-3);  // AdamW's moments exist from the first step
    std::vector<torch::Tensor> moments;
    for (const auto& [name, t] : optimizer.state_tensors())
      if (name.rfind("exp_avg", 0) == 0) moments.push_back(t);  // not the step counters
    const MemoryEstimate one = estimate_training_memory(config, 1), two = estimate_training_memory(config, 2);
    EXPECT_EQ(one.parameters, bytes_of(weights.tensors()));
    EXPECT_EQ(one.gradients, bytes_of(optimizer.trainable()));
    EXPECT_EQ(one.optimizer_state, bytes_of(moments));
    EXPECT_EQ(one.gradient_buckets, 0.0);
    EXPECT_EQ(two.gradient_buckets, bytes_of(optimizer.trainable()));  // one flat copy of the gradients
    EXPECT_EQ(one.total(),
              one.parameters + one.gradients + one.optimizer_state + one.gradient_buckets + one.activations);
  }
}

TEST(MemoryEstimate, ActivationsFollowThePerRankBatchAndTheRecomputation) {
  const Config fa = tiny("fa", {"training.global_batch_size=8"});
  const MemoryEstimate one = estimate_training_memory(fa, 1), two = estimate_training_memory(fa, 2);
  EXPECT_EQ(one.sequences_per_micro_batch, 8);
  EXPECT_EQ(two.sequences_per_micro_batch, 4);
  EXPECT_DOUBLE_EQ(one.activations, 2 * two.activations);  // a pretrain graph is linear in the batch
  // Accumulation splits the micro-batch like ranks do.
  EXPECT_DOUBLE_EQ(
      estimate_training_memory(tiny("fa", {"training.global_batch_size=8", "training.accum_steps=2"}), 1).activations,
      two.activations);
  // Keeping the whole inner loop's graph costs more than recomputing it group by group.
  const auto meta = [](const std::string& remat) {
    return estimate_training_memory(tiny("e2e", {"training.seq_length=4096", "training.inner_remat_freq=" + remat}), 1)
        .activations;
  };
  EXPECT_GT(meta("0"), meta("1"));
}

TEST(MemoryEstimate, BlockRecomputationAndTheSlicedHeadCountWhatTheyKeep) {
  // model.remat_block=nothing_saveable keeps one block's graph instead of all four, plus the
  // blocks' inputs: less than the whole graph, more than a quarter of it.
  const auto fa = [](const std::string& remat) {
    return estimate_training_memory(tiny("fa", {"training.seq_length=4096", "model.remat_block=" + remat}), 1);
  };
  const MemoryEstimate whole = fa("''"), blockwise = fa("nothing_saveable");
  EXPECT_LT(blockwise.activations, whole.activations);
  EXPECT_GT(blockwise.activations, whole.activations / 4);
  EXPECT_NE(blockwise.activation_peak.find("remat_block"), std::string::npos);
  // A Llama-3 vocabulary over 8K tokens is sliced (2^26 logits at a time): 8K more tokens cost
  // less than their fp32 logits, where an unsliced head keeps about three times that.
  const auto head = [](int64_t tokens) {
    return estimate_training_memory(
               tiny("fa", {"model.vocab_size=128256", "model.output_size=128256", "model.bos_token_id=128000",
                           "model.eos_token_id=128001", "training.global_batch_size=1", "model.mini_batch_size=256",
                           "training.seq_length=" + std::to_string(tokens)}),
               1)
        .activations;
  };
  const double V = 128256, logits_fp32 = 4 * V;
  EXPECT_LT(head(16384) - head(8192), 8192 * logits_fp32);  // kept log-probabilities alone: 3x that
  // Below the budget the log-probabilities are kept: 256 more tokens cost at least their logits.
  EXPECT_GT(head(512) - head(256), 256 * logits_fp32);
}

TEST(MemoryEstimate, PiecewiseAttentionKeepsNoScores) {
  // Over its budget, attention keeps q, k and v instead of its probabilities (model/attention.h):
  // doubling the context of a full-attention step then costs less than the probabilities it would
  // add (4 heads x 3/4 of the new token pairs x 4 bytes, at least), and a meta step's chunks
  // (their attention and loss) hold less too.
  // Full attention over the whole sequence (a mini-batch shorter than it would split it).
  const auto step = [](const std::string& variant, int64_t T) {
    const int64_t b = variant == "fa" ? T : 256;
    return estimate_training_memory(
               tiny(variant, {"training.seq_length=" + std::to_string(T), "training.global_batch_size=1",
                              "model.mini_batch_size=" + std::to_string(b)}),
               1)
        .activations;
  };
  const double kept_growth = step("fa", 4096) - step("fa", 2048);
  const double kept_meta = step("e2e", 4096);
  ScopedPiecewiseBudget everything(PiecewiseBudget{0, 0, int64_t{1} << 20});
  const double piecewise_growth = step("fa", 4096) - step("fa", 2048);
  const double probabilities = 4.0 * 0.75 * (4096.0 * 4096 - 2048.0 * 2048) / 2 * 4;
  EXPECT_GT(kept_growth, probabilities);
  EXPECT_LT(piecewise_growth, kept_growth - probabilities);
  EXPECT_LT(step("e2e", 4096), kept_meta);
}

TEST(MemoryEstimate, SizesParseAndBadInputIsRefusedNamingIt) {
  EXPECT_EQ(parse_byte_size("80GiB", "x"), 80.0 * 1024 * 1024 * 1024);
  EXPECT_EQ(parse_byte_size("1.5TB", "x"), 1.5e12);
  EXPECT_EQ(parse_byte_size("512MiB", "x"), 512.0 * 1024 * 1024);
  EXPECT_EQ(parse_byte_size("2e9", "x"), 2e9);
  EXPECT_EQ(format_bytes(1536.0 * 1024 * 1024), "1.50 GiB");
  for (const char* bad : {"", "80 gigabytes", "-1GiB", "GiB"})
    expect_one_line_error<ConfigError>([&] { parse_byte_size(bad, "--device-memory"); }, {"--device-memory"});
  // 8 sequences cannot be shared by 3 ranks.
  expect_one_line_error<ConfigError>([] { estimate_training_memory(tiny("e2e"), 3); }, {"global_batch_size"});
}

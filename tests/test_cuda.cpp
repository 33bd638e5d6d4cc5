// The CUDA path against the CPU: the same losses, evaluation NLL by position, gradients and
// greedy generation from the same weights and tokens, and a kill -9 / resume on CUDA bitwise equal
// to an uninterrupted CUDA run. Every test is skipped, with the reason printed, where LibTorch
// sees no CUDA device (CTest label cuda).
//
// Tolerances. float32: the two devices sum in different orders (blocked matrix products, tree
// reductions, fused attention kernels), about 1e-7 relative per operation; the meta-gradient
// chains a few hundred such operations through second derivatives, so losses must agree to 1e-5
// and every gradient to 1e-4 of its own largest element. bfloat16 compute rounds every product
// input to 8 bits (4e-3 relative), so losses agree to 2e-2 and gradients only in direction
// (cosine similarity 0.99).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "infer/decoder.h"
#include "infer/generate.h"
#include "support/decoding.h"
#include "support/dist_runs.h"
#include "support/processes.h"
#include "support/test_util.h"
#include "support/tiny_model.h"
#include "train/checkpoint.h"
#include "ttt/sequence_loss.h"
#include "util/torch_compat.h"

namespace fs = std::filesystem;
using namespace ttt;
using namespace ttt::testing;

#define REQUIRE_CUDA()              \
  if (!torch::cuda::is_available()) \
  GTEST_SKIP() << "no CUDA device visible to this LibTorch (" << torch_build_description() << ")"

namespace {

const torch::Device kCuda(torch::kCUDA, 0);

// Four blocks (one suffix block with a prime MLP), three chunks of 8 tokens per sequence.
Config small_config(TrainMode mode, SeqModelingBlock block, DType compute) {
  Config c = tiny_meta_config();
  c.model.hidden_size = 32;
  c.model.num_attention_heads = 2;
  c.model.intermediate_size = 48;
  c.model.num_hidden_layers = 4;
  c.model.sliding_window_size = 16;
  c.model.mini_batch_size = 8;
  c.model.seq_modeling_block = block;
  c.model.compute_dtype = compute;
  c.training.seq_length = 24;
  c.training.train_mode = mode;
  if (mode == TrainMode::kPretrain) {
    c.model.prime = false;
    c.model.suffix_len = 0;
    c.model.mini_batch_size = c.training.seq_length;  // full attention over the whole sequence
  }
  return c;
}

struct Run {
  double loss = 0;
  std::vector<torch::Tensor> grads;  // on the CPU, by parameter
  torch::Tensor token_nll;           // [B, T] on the CPU (evaluation)
};

Run train_and_evaluate(const Config& c, torch::Device device) {
  auto w = ModelWeights::initialize(c.model, 5, torch::kFloat32, device);
  for (const auto& t : w.tensors()) t.requires_grad_(true);
  const Batch batch = random_batch(2, c.training.seq_length, c.model.vocab_size, 11).to(device);
  Run r;
  r.loss = loss_and_backward(c.model, w, batch, TttOptions::for_step(c, 0), c.training.inner_remat_freq, 1.0)
               .loss.item<double>();
  for (const auto& t : w.tensors()) r.grads.push_back(t.grad().cpu());
  r.token_nll = sequence_loss(c.model, w, batch, TttOptions::for_inference(c)).token_nll.cpu();
  return r;
}

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

void expect_same_run(const Config& c, double loss_rtol, double grad_rtol, double min_cosine) {
  const Run cpu = train_and_evaluate(c, torch::kCPU), cuda = train_and_evaluate(c, kCuda);
  EXPECT_NEAR(cuda.loss, cpu.loss, loss_rtol * std::abs(cpu.loss));
  const auto layout = ModelWeights::initialize(c.model, 5).layout();
  for (size_t i = 0; i < cpu.grads.size(); ++i) {
    const auto &a = cpu.grads[i], &b = cuda.grads[i];
    if (grad_rtol > 0) EXPECT_LE(max_abs(a - b), grad_rtol * max_abs(a) + 1e-12) << layout[i].name;
    if (min_cosine > 0)
      EXPECT_GE(torch::cosine_similarity(a.flatten(), b.flatten(), 0).item<double>(), min_cosine) << layout[i].name;
  }
  EXPECT_LE(max_abs(cpu.token_nll - cuda.token_nll), loss_rtol * 10 * max_abs(cpu.token_nll)) << "eval NLL";
}

}  // namespace

TEST(Cuda, MetaLossGradientsAndEvalNllMatchTheCpuInFloat32) {
  REQUIRE_CUDA();
  for (int64_t remat : {0, 1}) {
    Config c = small_config(TrainMode::kMeta, SeqModelingBlock::kSlidingWindow, DType::kFloat32);
    c.training.inner_remat_freq = remat;
    SCOPED_TRACE("inner_remat_freq " + std::to_string(remat));
    expect_same_run(c, 1e-5, 1e-4, 0);
  }
}

TEST(Cuda, PretrainLossGradientsAndEvalNllMatchTheCpuInFloat32) {
  REQUIRE_CUDA();
  for (auto block : {SeqModelingBlock::kSelfAttention, SeqModelingBlock::kSlidingWindow}) {
    SCOPED_TRACE(block == SeqModelingBlock::kSelfAttention ? "full attention" : "sliding window");
    expect_same_run(small_config(TrainMode::kPretrain, block, DType::kFloat32), 1e-5, 1e-4, 0);
  }
}

TEST(Cuda, Bfloat16ComputeMatchesTheCpuWithinBfloat16Precision) {
  REQUIRE_CUDA();
  expect_same_run(small_config(TrainMode::kMeta, SeqModelingBlock::kSlidingWindow, DType::kBFloat16), 2e-2, 0, 0.99);
  expect_same_run(small_config(TrainMode::kPretrain, SeqModelingBlock::kSelfAttention, DType::kBFloat16), 2e-2, 0,
                  0.99);
}

TEST(Cuda, GreedyGenerationEqualsTheCpuInFloat32) {
  REQUIRE_CUDA();
  for (auto mode : {TrainMode::kMeta, TrainMode::kPretrain}) {
    const Config c = small_config(mode, SeqModelingBlock::kSlidingWindow, DType::kFloat32);
    const auto ttt = TttOptions::for_inference(c);
    auto generate = [&](torch::Device device) {
      const auto w = ModelWeights::initialize(c.model, 7, torch::kFloat32, device);
      DecodeState state = start_decoding(c.model, ttt, w);
      read_tokens(c.model, ttt, w, state, random_tokens(13, 3));
      GenerateOptions o;
      o.sampling.temperature = 0;
      o.max_new_tokens = 40;  // five chunks: the fast weights learn on CUDA as on the CPU
      return generate_tokens(c.model, ttt, w, state, o);
    };
    EXPECT_EQ(generate(kCuda), generate(torch::kCPU)) << (mode == TrainMode::kMeta ? "meta" : "pretrain");
  }
}

TEST(Cuda, KillNineAndResumeOnCudaIsBitwiseEqualToAnUninterruptedRun) {
  REQUIRE_CUDA();
  const auto dir = fresh_temp_dir("cuda_kill9");
  const int64_t steps = 8;
  auto args = [&](const std::string& exp) {
    auto a = small_train_args("e2e", exp);
    for (const std::string& more :
         {std::string("backend.device=cuda"), std::string("backend.deterministic=true"),
          std::string("training.global_batch_size=2"), std::string("training.eval_batch_size=2"),
          "training.total_steps=" + std::to_string(steps), std::string("checkpoint.save_freq=1"),
          "training.exp_dir=" + (dir / "exp").string(), "training.checkpoint_path=" + (dir / "ckpt").string()})
      a.push_back(more);
    return a;
  };
  ASSERT_EQ(run(args("straight"), dir / "straight.log"), 0) << read_bytes(dir / "straight.log");
  const auto interrupted = dir / "ckpt" / "demo" / "interrupted";
  const pid_t pid = spawn(args("interrupted"), dir / "interrupted.log");
  ASSERT_TRUE(wait_for_checkpoint(interrupted, 2, std::chrono::seconds(300))) << read_bytes(dir / "interrupted.log");
  kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);
  ASSERT_LT(complete_checkpoint_steps(interrupted.string()).back(), steps - 1) << "the run ended before the kill";
  ASSERT_EQ(run(args("interrupted"), dir / "resumed.log"), 0) << read_bytes(dir / "resumed.log");
  const auto last = std::to_string(steps - 1);
  for (const char* file : {"model.safetensors", "optimizer.safetensors"})
    EXPECT_TRUE(read_bytes(dir / "ckpt" / "demo" / "straight" / last / file) == read_bytes(interrupted / last / file))
        << file << " of the resumed CUDA run differs from the uninterrupted one's";
  fs::remove_all(dir);
}

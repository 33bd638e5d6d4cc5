// Helpers of the tests that run several `ttt` processes as one distributed training run (tiny
// models on the dummy dataset): their arguments, launch on loopback, and what they leave behind.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/free_port.h"
#include "support/processes.h"
#include "support/test_util.h"
#include "train/checkpoint.h"
#include "util/safetensors.h"

namespace ttt::testing {

// A small run on the dummy dataset: tiny E2E (meta) or full attention (pretrain).
inline std::vector<std::string> run_args(const std::filesystem::path& dir, const std::string& exp_name,
                                         const std::string& variant, int64_t steps, int64_t accum = 1) {
  auto args = small_train_args(variant, exp_name);
  for (const std::string& more : std::vector<std::string>{
           "training.global_batch_size=4", "training.accum_steps=" + std::to_string(accum),
           "training.eval_batch_size=4", "training.total_steps=" + std::to_string(steps), "training.ilr_warmup_steps=2",
           "training.optimizer_outer.lr_warmup_steps=1",
           "training.optimizer_outer.lr_decay_steps=" + std::to_string(steps), "checkpoint.save_freq=1",
           "checkpoint.keep_last=2", "backend.dist_timeout_s=60", "training.exp_dir=" + (dir / "exp").string(),
           "training.checkpoint_path=" + (dir / "ckpt").string()})
    args.push_back(more);
  return args;
}

inline std::map<std::string, std::string> rank_env(int rank, int world, int port,
                                                   const std::string& addr = "127.0.0.1") {
  return {{"RANK", std::to_string(rank)},
          {"WORLD_SIZE", std::to_string(world)},
          {"LOCAL_RANK", std::to_string(rank)},
          {"MASTER_ADDR", addr},
          {"MASTER_PORT", std::to_string(port)}};
}

// Launches `world` ranks of `args` on loopback; logs <dir>/<name>.<rank>.log.
inline std::vector<pid_t> launch(const std::vector<std::string>& args, const std::filesystem::path& dir,
                                 const std::string& name, int world, int port = 0) {
  if (port == 0) port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r)
    pids.push_back(spawn(args, dir / (name + "." + std::to_string(r) + ".log"), kTttBinary, rank_env(r, world, port)));
  return pids;
}

// Waits for every rank; true when all exited 0 (a failure names the rank and prints its log).
inline ::testing::AssertionResult all_succeed(const std::vector<pid_t>& pids, const std::filesystem::path& dir,
                                              const std::string& name) {
  std::string failures;
  for (size_t r = 0; r < pids.size(); ++r) {
    const int code = wait_exit_within(pids[r], std::chrono::seconds(300));
    if (code != 0)
      failures += "rank " + std::to_string(r) + " exited " + std::to_string(code) + ":\n" +
                  read_bytes(dir / (name + "." + std::to_string(r) + ".log"));
  }
  if (failures.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << failures;
}

inline std::filesystem::path final_checkpoint(const std::filesystem::path& dir, const std::string& exp, int64_t steps) {
  return dir / "ckpt" / "demo" / exp / std::to_string(steps - 1);
}

// The largest |a - b| over all tensors of two model.safetensors files with the same names.
inline double max_weight_difference(const std::filesystem::path& a, const std::filesystem::path& b) {
  const auto x = load_safetensors((a / "model.safetensors").string()),
             y = load_safetensors((b / "model.safetensors").string());
  EXPECT_EQ(x.tensors.size(), y.tensors.size());
  double worst = 0.0;
  for (const auto& [name, t] : x.tensors) {
    const auto it = y.tensors.find(name);
    if (it == y.tensors.end()) {
      ADD_FAILURE() << name << " missing";
      continue;
    }
    worst = std::max(worst, (t.to(torch::kFloat64) - it->second.to(torch::kFloat64)).abs().max().item<double>());
  }
  return worst;
}

inline nlohmann::json eval_json(const std::filesystem::path& dir, const std::string& exp) {
  return nlohmann::json::parse(read_bytes(dir / "exp" / "demo" / exp / "eval.json"));
}

// fp32: two ranks sum their halves of the batch gradient in another order than one process does.
// Measured on this machine after 4 steps: 1.2e-7 (meta) to 1.6e-7 (pretrain, accumulation 2);
// the bound leaves room for AdamW's early steps, which turn a rounding difference in a near-zero
// gradient component into a larger step difference.
inline constexpr double kWeightTolerance = 1e-5;
inline constexpr double kLossTolerance = 1e-4;

// Waits until `checkpoint_dir` holds a complete checkpoint of step `step` or later; false after
// two minutes.
inline bool wait_for_checkpoint(const std::filesystem::path& checkpoint_dir, int64_t step,
                                std::chrono::seconds limit = std::chrono::seconds(120)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto steps = complete_checkpoint_steps(checkpoint_dir.string());
    if (!steps.empty() && steps.back() >= step) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace ttt::testing

// Whole-process training behaviour of the `ttt` binary: N steps straight vs K steps + kill -9 +
// resume give bitwise-equal weights; kills at arbitrary moments never leave a broken checkpoint;
// an extension run loads another run's parameters into a longer-context config; eval outputs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/dist_runs.h"
#include "support/processes.h"
#include "train/checkpoint.h"
#include "util/process_tag.h"
#include "util/safetensors.h"

namespace fs = std::filesystem;
using namespace ttt;

namespace {

const std::string& kBinary = ttt::testing::kTttBinary;
using ttt::testing::read_bytes;
using ttt::testing::run;
using ttt::testing::spawn;
using ttt::testing::wait_exit;
using ttt::testing::wait_for_checkpoint;

fs::path temp_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("ttt_resume_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// A small, fast E2E run on the dummy dataset; every step checkpointed.
std::vector<std::string> run_args(const fs::path& dir, const std::string& exp_name, int64_t steps) {
  auto args = ttt::testing::small_train_args("e2e", exp_name);
  for (const std::string& more : std::vector<std::string>{
           "training.global_batch_size=2", "training.eval_batch_size=2",
           "training.total_steps=" + std::to_string(steps), "training.ilr_warmup_steps=2",
           "training.optimizer_outer.lr_warmup_steps=" + std::to_string(steps > 1 ? 1 : 0),
           "training.optimizer_outer.lr_decay_steps=" + std::to_string(steps), "checkpoint.save_freq=1",
           "checkpoint.keep_last=2", "training.exp_dir=" + (dir / "exp").string(),
           "training.checkpoint_path=" + (dir / "ckpt").string()})
    args.push_back(more);
  return args;
}

fs::path ckpt_dir(const fs::path& dir, const std::string& exp) { return dir / "ckpt" / "demo" / exp; }

// Every complete checkpoint must load in full.
void expect_all_checkpoints_load(const fs::path& checkpoints) {
  for (int64_t step : complete_checkpoint_steps(checkpoints.string())) {
    const auto d = checkpoints / std::to_string(step);
    EXPECT_NO_THROW(load_safetensors((d / "model.safetensors").string())) << d;
    EXPECT_NO_THROW(load_safetensors((d / "optimizer.safetensors").string())) << d;
    EXPECT_NO_THROW(load_checkpoint_state(d.string())) << d;
    EXPECT_NO_THROW(load_checkpoint_config(d.string())) << d;
  }
}

}  // namespace

TEST(Resume, KillNineAndResumeGivesBitwiseEqualWeights) {
  auto dir = temp_dir("kill9");
  const int64_t steps = 10;
  ASSERT_EQ(run(run_args(dir, "straight", steps), dir / "straight.log"), 0) << read_bytes(dir / "straight.log");

  const auto interrupted = ckpt_dir(dir, "interrupted");
  pid_t pid = spawn(run_args(dir, "interrupted", steps), dir / "interrupted.log");
  ASSERT_TRUE(wait_for_checkpoint(interrupted, 3)) << read_bytes(dir / "interrupted.log");
  kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);
  const int64_t killed_after = complete_checkpoint_steps(interrupted.string()).back();
  ASSERT_LT(killed_after, steps - 1) << "the run finished before it could be killed";

  ASSERT_EQ(run(run_args(dir, "interrupted", steps), dir / "resumed.log"), 0) << read_bytes(dir / "resumed.log");
  EXPECT_NE(read_bytes(dir / "resumed.log").find("resuming at step"), std::string::npos);
  const auto last = std::to_string(steps - 1);
  for (const char* file : {"model.safetensors", "optimizer.safetensors"})
    EXPECT_TRUE(read_bytes(ckpt_dir(dir, "straight") / last / file) == read_bytes(interrupted / last / file))
        << file << " of the resumed run differs from the uninterrupted run's (killed after step " << killed_after
        << ")";
  // metrics.jsonl holds every step once.
  std::ifstream metrics(dir / "exp" / "demo" / "interrupted" / "metrics.jsonl");
  std::vector<int64_t> logged;
  for (std::string line; std::getline(metrics, line);) logged.push_back(nlohmann::json::parse(line).at("step"));
  std::vector<int64_t> expected(steps);
  for (int64_t i = 0; i < steps; ++i) expected[i] = i;
  EXPECT_EQ(logged, expected);
  fs::remove_all(dir);
}

TEST(Resume, KillsAtArbitraryMomentsNeverLeaveABrokenCheckpoint) {
  auto dir = temp_dir("atomic");
  const int64_t steps = 40;
  const auto checkpoints = ckpt_dir(dir, "atomic");
  // Kill at spread-out moments (step boundaries, mid-step, mid-save), then verify what is there.
  for (int attempt = 0; attempt < 6; ++attempt) {
    pid_t pid = spawn(run_args(dir, "atomic", steps), dir / "atomic.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(700 + 137 * attempt));
    kill(pid, SIGKILL);
    wait_exit(pid);
    expect_all_checkpoints_load(checkpoints);
  }
  ASSERT_EQ(run(run_args(dir, "atomic", steps), dir / "final.log"), 0) << read_bytes(dir / "final.log");
  EXPECT_EQ(complete_checkpoint_steps(checkpoints.string()).back(), steps - 1);
  expect_all_checkpoints_load(checkpoints);
  fs::remove_all(dir);
}

TEST(Resume, ExtensionLoadsParamsIntoALongerContextConfig) {
  auto dir = temp_dir("ext");
  ASSERT_EQ(run(run_args(dir, "base", 3), dir / "base.log"), 0) << read_bytes(dir / "base.log");
  auto ext = run_args(dir, "ext", 1);
  ext.push_back("training.seq_length=128");
  ext.push_back("training.resume_exp_name=base");
  ext.push_back("training.load_part=params");
  ext.push_back("training.optimizer_outer.lr=0");  // weights must come out exactly as loaded
  ASSERT_EQ(run(ext, dir / "ext.log"), 0) << read_bytes(dir / "ext.log");
  EXPECT_NE(read_bytes(dir / "ext.log").find("loaded weights from"), std::string::npos);
  auto base = load_safetensors((ckpt_dir(dir, "base") / "2" / "model.safetensors").string());
  auto extended = load_safetensors((ckpt_dir(dir, "ext") / "0" / "model.safetensors").string());
  for (const auto& [name, t] : base.tensors) EXPECT_TRUE(torch::equal(t, extended.tensors.at(name))) << name;
  EXPECT_EQ(load_checkpoint_config((ckpt_dir(dir, "ext") / "0").string()).training.seq_length, 128);
  // Without a run to load from, load_part is a clear error.
  auto broken = run_args(dir, "broken", 1);
  broken.push_back("training.load_part=params");
  EXPECT_EQ(run(broken, dir / "broken.log"), 2);
  EXPECT_NE(read_bytes(dir / "broken.log").find("training.resume_exp_name"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Resume, EvalOutputsHaveOneValuePerPositionAndAverageToTheLoss) {
  auto dir = temp_dir("eval");
  ASSERT_EQ(run(run_args(dir, "ev", 2), dir / "train.log"), 0) << read_bytes(dir / "train.log");
  std::vector<std::string> eval_args = {"eval", "--checkpoint", ckpt_dir(dir, "ev").string()};
  ASSERT_EQ(run(eval_args, dir / "eval.log"), 0) << read_bytes(dir / "eval.log");
  const auto run_dir = dir / "exp" / "demo" / "ev";
  std::ifstream in(run_dir / "eval.json");
  const auto j = nlohmann::json::parse(in);
  const auto nll = j.at("nll_by_position").get<std::vector<double>>();
  ASSERT_EQ(nll.size(), 64u);
  // 4 batches of the reference's eval batch max(eval_batch_size 2, 4 * global batch 2 / accum 1) = 8.
  EXPECT_EQ(j.at("num_sequences").get<int64_t>(), 32);
  EXPECT_EQ(j.at("num_dropped").get<int64_t>(), 0);
  EXPECT_EQ(j.at("step").get<int64_t>(), 1);
  // Dummy tokens carry no BOS, so every chunk has 16 valid targets: the loss (mean over chunks
  // of chunk means) is the mean over positions.
  double mean = 0;
  for (double v : nll) mean += v / nll.size();
  EXPECT_NEAR(j.at("loss").get<double>(), mean, 1e-6);
  std::ifstream csv(run_dir / "eval_nll_by_position.csv");
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  EXPECT_EQ(lines, 65);
  // The binned curve: log-spaced bins that tile positions 1..64, each the mean of its positions.
  const auto& binned = j.at("nll_binned");
  EXPECT_EQ(binned.at("bins_per_octave").get<int>(), 8);
  const auto first = binned.at("first").get<std::vector<int64_t>>(),
             last = binned.at("last").get<std::vector<int64_t>>();
  const auto bin_nll = binned.at("nll").get<std::vector<double>>();
  ASSERT_EQ(first.size(), bin_nll.size());
  ASSERT_EQ(last.size(), bin_nll.size());
  EXPECT_EQ(first.front(), 1);
  EXPECT_EQ(last.back(), 64);
  for (size_t b = 0; b < first.size(); ++b) {
    if (b > 0) EXPECT_EQ(first[b], last[b - 1] + 1);
    double sum = 0;
    for (int64_t p = first[b]; p <= last[b]; ++p) sum += nll[p - 1];
    EXPECT_NEAR(bin_nll[b], sum / static_cast<double>(last[b] - first[b] + 1), 1e-9) << b;
  }
  std::ifstream binned_csv(run_dir / "eval_nll_binned.csv");
  lines = 0;
  for (std::string line; std::getline(binned_csv, line);) ++lines;
  EXPECT_EQ(lines, static_cast<int>(first.size()) + 1);
  EXPECT_TRUE(fs::exists(run_dir / "loss_by_position.svg"));
  fs::remove_all(dir);
}

TEST(Resume, NeedleSuiteWritesItsGridAndRejectsBadOptions) {
  auto dir = temp_dir("niah");
  ASSERT_EQ(run(run_args(dir, "needle", 1), dir / "train.log"), 0) << read_bytes(dir / "train.log");
  const auto run_dir = dir / "exp" / "demo" / "needle";
  std::vector<std::string> args = {"eval",
                                   "--task",
                                   "niah",
                                   "--checkpoint",
                                   ckpt_dir(dir, "needle").string(),
                                   "--lengths",
                                   "128,256",
                                   "--depths",
                                   "0,1",
                                   "--trials",
                                   "2",
                                   "model.sliding_window_size=160"};
  ASSERT_EQ(run(args, dir / "niah.log"), 0) << read_bytes(dir / "niah.log");
  std::ifstream in(run_dir / "niah.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("test_time_training").get<bool>(), true);
  EXPECT_EQ(j.at("sliding_window_size").get<int64_t>(), 160);  // the override on top of the run's 32
  const auto& cells = j.at("cells");
  ASSERT_EQ(cells.size(), 4u);
  // Lengths outer, depths inner. With a window of 160, only the needle at the start of 256 tokens
  // is out of sight (the needle is 66 bytes, the query 38).
  EXPECT_EQ(cells[3].at("length").get<int64_t>(), 256);
  const std::vector<std::string> windows = {"inside", "inside", "outside", "inside"};
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(cells[i].at("window").get<std::string>(), windows[i]) << i;
  for (const auto& cell : cells) {
    const double accuracy = cell.at("accuracy"), token_accuracy = cell.at("token_accuracy");
    EXPECT_GE(token_accuracy, accuracy);  // a passed trial has every answer token right
    EXPECT_GT(cell.at("answer_nll").get<double>(), 0);
    // By answer token: a space and 5 digits, every trial's answer as long; their mean is the whole.
    const auto at = cell.at("token_accuracy_at").get<std::vector<double>>();
    ASSERT_EQ(at.size(), 6u);
    double mean = 0;
    for (double a : at) mean += a / 6;
    EXPECT_NEAR(mean, token_accuracy, 1e-12);
  }
  EXPECT_EQ(j.at("needle_form").get<std::string>(), "repeated");
  int lines = 0;
  std::ifstream csv(run_dir / "niah.csv");
  for (std::string line; std::getline(csv, line);) ++lines;
  EXPECT_EQ(lines, 5);
  EXPECT_TRUE(fs::exists(run_dir / "niah_accuracy.svg"));
  const std::string log = read_bytes(dir / "niah.log");
  EXPECT_NE(log.find("| accuracy: depth \\ length | 128 | 256 |"), std::string::npos) << log;
  // A depth outside [0, 1] is a one-line error before anything is read or written.
  fs::remove(run_dir / "niah.json");
  args[8] = "0,1.5";
  EXPECT_NE(run(args, dir / "bad.log"), 0);
  EXPECT_NE(read_bytes(dir / "bad.log").find("needle depth 1.5"), std::string::npos) << read_bytes(dir / "bad.log");
  EXPECT_FALSE(fs::exists(run_dir / "niah.json"));
  fs::remove_all(dir);
}

TEST(Resume, RecallTaskWritesItsCellsAndRejectsBadOptions) {
  auto dir = temp_dir("recall");
  ASSERT_EQ(run(run_args(dir, "recall", 1), dir / "train.log"), 0) << read_bytes(dir / "train.log");
  const auto run_dir = dir / "exp" / "demo" / "recall";
  std::vector<std::string> args = {"eval",   "--task", "recall",    "--checkpoint", ckpt_dir(dir, "recall").string(),
                                   "--gaps", "0,20",   "--passage", "16",           "--trials",
                                   "3"};
  ASSERT_EQ(run(args, dir / "recall.log"), 0) << read_bytes(dir / "recall.log");
  std::ifstream in(run_dir / "recall.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("task").get<std::string>(), "recall");
  EXPECT_EQ(j.at("passage").get<int64_t>(), 16);
  EXPECT_EQ(j.at("trials").get<int64_t>(), 3);
  const auto& cells = j.at("cells");
  ASSERT_EQ(cells.size(), 2u);
  // The run's window is 32: a copy 16 tokens back is inside it, 36 tokens back outside.
  EXPECT_EQ(cells[0].at("distance").get<int64_t>(), 16);
  EXPECT_EQ(cells[0].at("window").get<std::string>(), "inside");
  EXPECT_EQ(cells[1].at("distance").get<int64_t>(), 36);
  EXPECT_EQ(cells[1].at("window").get<std::string>(), "outside");
  for (const auto& cell : cells)
    for (const char* key : {"first_nll", "repeat_nll", "control_nll"}) EXPECT_GT(cell.at(key).get<double>(), 0) << key;
  // The CSV: its header and a row per cell whose fields are the JSON's.
  std::ifstream csv(run_dir / "recall.csv");
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "gap,distance,trials,first_nll,repeat_nll,control_nll,repeat_accuracy,control_accuracy,window,seconds");
  EXPECT_EQ(lines[2].substr(0, lines[2].find(',', lines[2].find(',') + 1)), "20,36");
  EXPECT_NE(lines[2].find(",outside,"), std::string::npos) << lines[2];
  std::vector<std::string> fields;
  std::istringstream row(lines[1]);
  for (std::string field; std::getline(row, field, ',');) fields.push_back(field);
  ASSERT_EQ(fields.size(), 10u);
  const double repeat_nll = std::stod(fields[4]);
  EXPECT_NEAR(repeat_nll, cells[0].at("repeat_nll").get<double>(), 1e-6 * repeat_nll);
  EXPECT_NE(read_bytes(dir / "recall.log").find("| gap | distance | window |"), std::string::npos);
  // A negative gap is a one-line error before anything is read or written.
  fs::remove(run_dir / "recall.json");
  args[6] = "0,-4";
  EXPECT_NE(run(args, dir / "bad.log"), 0);
  EXPECT_NE(read_bytes(dir / "bad.log").find("recall gap -4 is negative"), std::string::npos)
      << read_bytes(dir / "bad.log");
  EXPECT_FALSE(fs::exists(run_dir / "recall.json"));
  fs::remove_all(dir);
}

TEST(Resume, EvaluatingARunWhileItTrainsLeavesTheRunIntact) {
  auto dir = temp_dir("evaltrain");
  const int64_t steps = 30;
  const auto checkpoints = ckpt_dir(dir, "busy");
  auto args = run_args(dir, "busy", steps);
  args.push_back("checkpoint.keep_last=100");  // evaluation reads checkpoints the run does not prune
  pid_t trainer = spawn(args, dir / "train.log");
  // Evaluate the run's latest checkpoint over and over while it trains and saves every step.
  int evaluations = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  int status = 0;
  while (waitpid(trainer, &status, WNOHANG) == 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << read_bytes(dir / "train.log");
    if (complete_checkpoint_steps(checkpoints.string()).empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    EXPECT_EQ(run({"eval", "--checkpoint", checkpoints.string()}, dir / "eval.log"), 0) << read_bytes(dir / "eval.log");
    ++evaluations;
  }
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_bytes(dir / "train.log");
  EXPECT_GT(evaluations, 0);
  EXPECT_EQ(complete_checkpoint_steps(checkpoints.string()).size(), static_cast<size_t>(steps));
  expect_all_checkpoints_load(checkpoints);

  // The same, made certain: a save in progress of a live process (this test) survives `ttt eval`
  // on its checkpoint directory, and a new training run's clean-up too.
  const auto in_progress = checkpoints / (".tmp-99-" + process_tag());
  fs::create_directories(in_progress);
  EXPECT_EQ(run({"eval", "--checkpoint", checkpoints.string()}, dir / "eval.log"), 0) << read_bytes(dir / "eval.log");
  EXPECT_EQ(run(args, dir / "again.log"), 0) << read_bytes(dir / "again.log");
  EXPECT_TRUE(fs::exists(in_progress));
  fs::remove_all(dir);
}

TEST(Resume, EndOfTrainingEvaluationUsesTheInnerLrOfTheLastStep) {
  // As the reference: the evaluation that ends training runs at the inner lr of step
  // total_steps - 1 (still warming up here), a standalone evaluation at the full inner lr.
  auto dir = temp_dir("ilr");
  auto args = run_args(dir, "warm", 2);
  args.push_back("training.ilr_warmup_steps=10");
  args.push_back("training.ilr_init=0.1");
  ASSERT_EQ(run(args, dir / "train.log"), 0) << read_bytes(dir / "train.log");
  const auto eval_json = dir / "exp" / "demo" / "warm" / "eval.json";
  auto inner_lr = [&] { return nlohmann::json::parse(read_bytes(eval_json)).at("inner_learning_rate").get<double>(); };
  EXPECT_DOUBLE_EQ(inner_lr(), 0.1 + (1.0 - 0.1) * 2 / 10);  // step 1: (1 + 1) / 10 of the warm-up
  const double trained_loss = nlohmann::json::parse(read_bytes(eval_json)).at("loss").get<double>();
  ASSERT_EQ(run({"eval", "--checkpoint", ckpt_dir(dir, "warm").string()}, dir / "eval.log"), 0)
      << read_bytes(dir / "eval.log");
  EXPECT_DOUBLE_EQ(inner_lr(), 1.0);
  EXPECT_NE(nlohmann::json::parse(read_bytes(eval_json)).at("loss").get<double>(), trained_loss);
  fs::remove_all(dir);
}

TEST(Resume, AFullDiskDuringASaveLosesNothing) {
  // bad-input.md #13: a save past a file-size limit once failed without a reason and left its
  // temporary folder behind. Now: the OS reason, no leftovers, earlier checkpoints intact, and the
  // next run (with room) continues.
  auto dir = temp_dir("full");
  const auto checkpoints = ckpt_dir(dir, "full");
  ASSERT_EQ(run(run_args(dir, "full", 2), dir / "first.log"), 0) << read_bytes(dir / "first.log");
  std::string command = "ulimit -f 100; exec '" + kBinary + "'";  // 100 KB: the weights do not fit
  for (const auto& a : run_args(dir, "full", 4)) command += " '" + a + "'";
  ASSERT_EQ(run({"-c", command}, dir / "limited.log", "/bin/bash"), 1) << read_bytes(dir / "limited.log");
  const std::string log = read_bytes(dir / "limited.log");
  EXPECT_NE(log.find("File too large"), std::string::npos) << log;
  EXPECT_EQ(complete_checkpoint_steps(checkpoints.string()), (std::vector<int64_t>{0, 1}));
  for (const auto& e : fs::directory_iterator(checkpoints))
    EXPECT_TRUE(e.path().filename() == "0" || e.path().filename() == "1") << "left behind: " << e.path();
  expect_all_checkpoints_load(checkpoints);
  ASSERT_EQ(run(run_args(dir, "full", 4), dir / "resumed.log"), 0) << read_bytes(dir / "resumed.log");
  EXPECT_EQ(complete_checkpoint_steps(checkpoints.string()).back(), 3);
  fs::remove_all(dir);
}

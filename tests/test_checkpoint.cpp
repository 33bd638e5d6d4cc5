// Checkpoints: safetensors round trip and validation, weights/optimizer/loader round trip,
// retention, incomplete directories, shape mismatches, the outer optimiser and schedule.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "support/tiny_model.h"
#include "train/checkpoint.h"
#include "train/lr_schedule.h"
#include "train/outer_optimizer.h"
#include "ttt/sequence_loss.h"
#include "util/safetensors.h"

using namespace ttt;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("ttt_ckpt_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

// The pid of a process that has exited.
pid_t dead_pid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

std::string temp_dir_of(int64_t step, const std::string& host, pid_t pid) {
  return ".tmp-" + std::to_string(step) + "-" + host + "-" + std::to_string(pid);
}

Config tiny_config() {
  Config c = ttt::testing::tiny_meta_config();
  c.training.optimizer_outer.lr = 1e-2;
  return c;
}

// One real AdamW step so the optimizer has moments.
void take_one_step(const Config& c, ModelWeights& w, OuterOptimizer& opt) {
  auto batch = ttt::testing::random_batch(2, 12, c.model.vocab_size, 3);
  opt.zero_grad();
  meta_loss(c.model, w, batch, TttOptions::for_step(c, 0), /*create_graph=*/true).loss.backward();
  opt.clip_gradients();
  opt.step(1e-2);
}

}  // namespace

TEST(Safetensors, RoundTripKeepsDtypesShapesValuesAndMetadata) {
  auto dir = temp_dir("st");
  std::vector<std::pair<std::string, torch::Tensor>> in = {
      {"a", torch::randn({3, 4})}, {"b", torch::randn({5}).to(torch::kBFloat16)},
      {"c", torch::arange(7, torch::kInt64)}, {"d", torch::tensor(3.5, torch::kFloat64)}};
  save_safetensors((dir / "x.safetensors").string(), in, {{"k", "v"}});
  auto out = load_safetensors((dir / "x.safetensors").string());
  ASSERT_EQ(out.tensors.size(), 4u);
  for (const auto& [name, t] : in) {
    EXPECT_EQ(out.tensors.at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(out.tensors.at(name), t)) << name;
  }
  EXPECT_EQ(out.metadata.at("k"), "v");
  // Header layout: 8-byte little-endian length, then JSON starting with '{'.
  std::ifstream f(dir / "x.safetensors", std::ios::binary);
  unsigned char head[9];
  f.read(reinterpret_cast<char*>(head), 9);
  EXPECT_EQ(head[8], '{');
  fs::remove_all(dir);
}

TEST(Safetensors, TruncatedOrCorruptFilesAreErrorsNamingTheFile) {
  auto dir = temp_dir("st_bad");
  const auto path = (dir / "x.safetensors").string();
  save_safetensors(path, {{"a", torch::randn({64})}});
  const auto size = fs::file_size(path);
  fs::resize_file(path, size - 10);
  try {
    load_safetensors(path);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::ofstream(path, std::ios::binary) << std::string("\x04\0\0\0\0\0\0\0nope", 12);
  EXPECT_THROW(load_safetensors(path), std::runtime_error);
  fs::remove_all(dir);
}

TEST(Checkpoint, RoundTripRestoresWeightsOptimizerAndState) {
  auto dir = temp_dir("rt");
  Config c = tiny_config();
  auto w = ModelWeights::initialize(c.model, 1);
  OuterOptimizer opt(c.training.optimizer_outer, c.training.spec_outer, w);
  take_one_step(c, w, opt);
  Checkpointer ck(dir.string(), {3});
  ck.save(TrainState{0, 5}, w, &opt, c, false);

  auto w2 = ModelWeights::initialize(c.model, 99);
  OuterOptimizer opt2(c.training.optimizer_outer, c.training.spec_outer, w2);
  const auto step_dir = find_checkpoint(dir.string());
  load_checkpoint_weights(step_dir, w2);
  load_checkpoint_optimizer(step_dir, opt2);
  for (size_t i = 0; i < w.tensors().size(); ++i) EXPECT_TRUE(torch::equal(w.tensors()[i], w2.tensors()[i])) << i;
  const auto a = opt.state_tensors(), b = opt2.state_tensors();
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 0u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
  const auto state = load_checkpoint_state(step_dir);
  EXPECT_EQ(state.step, 0);
  EXPECT_EQ(state.loader_position, 5);
  EXPECT_EQ(load_checkpoint_config(step_dir).training.train_mode, TrainMode::kMeta);
  // The next step from restored state equals the next step from the original.
  take_one_step(c, w, opt);
  take_one_step(c, w2, opt2);
  for (size_t i = 0; i < w.tensors().size(); ++i) EXPECT_TRUE(torch::equal(w.tensors()[i], w2.tensors()[i])) << i;
  fs::remove_all(dir);
}

TEST(Checkpoint, KeepsLastFewAndMilestonesAndIgnoresIncomplete) {
  auto dir = temp_dir("keep");
  Config c = tiny_config();
  auto w = ModelWeights::initialize(c.model, 1);
  Checkpointer ck(dir.string(), {2});
  for (int64_t s = 0; s < 6; ++s) ck.save(TrainState{s, s}, w, nullptr, c, /*milestone=*/s == 1);
  EXPECT_EQ(complete_checkpoint_steps(dir.string()), (std::vector<int64_t>{1, 4, 5}));
  // A directory without state.json (a save cut short) is not a checkpoint.
  fs::create_directories(dir / "9");
  EXPECT_EQ(find_checkpoint(dir.string()), (dir / "5").string());
  EXPECT_EQ(find_checkpoint(dir.string(), 4), (dir / "4").string());
  EXPECT_THROW(find_checkpoint(dir.string(), 3), std::runtime_error);
  // Saved without optimizer state: loading it is a clear error.
  auto w2 = ModelWeights::initialize(c.model, 2);
  OuterOptimizer opt(c.training.optimizer_outer, c.training.spec_outer, w2);
  EXPECT_THROW(load_checkpoint_optimizer((dir / "5").string(), opt), std::runtime_error);
  // Leftover temporary directories of dead processes are removed by the next Checkpointer; the
  // save in progress of a live process (here: this one), or of another host, is left alone.
  const std::string dead = temp_dir_of(7, host_name(), dead_pid());
  const std::string live = temp_dir_of(8, host_name(), getpid());
  const std::string elsewhere = temp_dir_of(9, "another-host", dead_pid());
  for (const auto& name : {dead, live, elsewhere}) fs::create_directories(dir / name);
  Checkpointer again(dir.string(), {2});
  EXPECT_FALSE(fs::exists(dir / dead));
  EXPECT_TRUE(fs::exists(dir / live));
  EXPECT_TRUE(fs::exists(dir / elsewhere));
  fs::remove_all(dir);
}

TEST(Checkpoint, ShapeMismatchNamesTheFirstTensor) {
  auto dir = temp_dir("shape");
  Config c = tiny_config();
  auto w = ModelWeights::initialize(c.model, 1);
  Checkpointer(dir.string(), {1}).save(TrainState{0, 0}, w, nullptr, c, false);
  Config wider = c;
  wider.model.intermediate_size = 32;
  auto w2 = ModelWeights::initialize(wider.model, 1);
  try {
    load_checkpoint_weights(find_checkpoint(dir.string()), w2);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("language_model.model.h.blocks.0.feed_forward.w1.weight"), std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

TEST(OuterSchedule, WarmupCosineMatchesHandValues) {
  OptimizerConfig o;
  o.init_lr = 0.0;
  o.lr = 1.0;
  o.end_lr = 0.1;
  o.lr_warmup_steps = 10;
  o.lr_decay_steps = 110;
  EXPECT_DOUBLE_EQ(outer_learning_rate(o, 0), 0.0);
  EXPECT_DOUBLE_EQ(outer_learning_rate(o, 5), 0.5);
  EXPECT_DOUBLE_EQ(outer_learning_rate(o, 10), 1.0);
  EXPECT_NEAR(outer_learning_rate(o, 60), 0.1 + 0.9 * 0.5, 1e-12);  // halfway: cos(pi/2) = 0
  EXPECT_NEAR(outer_learning_rate(o, 110), 0.1, 1e-12);
  EXPECT_NEAR(outer_learning_rate(o, 500), 0.1, 1e-12);
  o.lr = 0.0;
  EXPECT_DOUBLE_EQ(outer_learning_rate(o, 50), 0.0);
}

TEST(OuterOptimizer, AdamWStepAndClipMatchHandComputation) {
  // One parameter of 2 elements (the embedding, excluded from decay when emb_wd=false) against
  // the AdamW formula: m = (1-b1) g, v = (1-b2) g^2, update = lr * m_hat / (sqrt(v_hat) + eps).
  Config c = tiny_config();
  c.training.spec_outer = {"language_model.model.wte.weight"};
  auto w = ModelWeights::initialize(c.model, 1);
  OptimizerConfig o = c.training.optimizer_outer;
  o.clip_gradient = 1.0;
  o.weight_decay = 0.1;
  OuterOptimizer opt(o, c.training.spec_outer, w);
  auto p = w.get("language_model.model.wte.weight");
  const auto before = p.detach().clone();
  p.mutable_grad() = torch::full_like(p, 0.0);
  p.mutable_grad()[0][0] = 3.0;
  p.mutable_grad()[0][1] = 4.0;  // global norm 5 -> clipped to (0.6, 0.8)
  EXPECT_DOUBLE_EQ(opt.clip_gradients(), 5.0);
  EXPECT_NEAR(p.grad()[0][1].item<double>(), 0.8, 1e-6);
  const double lr = 0.01;
  opt.step(lr);
  for (int j : {0, 1}) {
    const double g = j == 0 ? 0.6 : 0.8, x = before[0][j].item<double>();
    const double m_hat = g, v_hat = g * g;  // bias-corrected after one step
    const double expected = x * (1 - lr * 0.1) - lr * m_hat / (std::sqrt(v_hat) + 1e-8);
    EXPECT_NEAR(p[0][j].item<double>(), expected, 1e-6) << j;
  }
  // Elements with zero gradient only decay.
  EXPECT_NEAR(p[1][0].item<double>(), before[1][0].item<double>() * (1 - lr * 0.1), 1e-7);
}

TEST(OuterOptimizer, LoggedGradientNormIsTheReferencesSafeNorm) {
  // The reference logs sqrt(sum g^2 + 1e-5); clipping uses the plain norm.
  EXPECT_DOUBLE_EQ(logged_gradient_norm(3.0), std::sqrt(9.0 + 1e-5));
  EXPECT_DOUBLE_EQ(logged_gradient_norm(0.0), std::sqrt(1e-5));
  Config c = tiny_config();
  auto w = ModelWeights::initialize(c.model, 1);
  OuterOptimizer opt(c.training.optimizer_outer, c.training.spec_outer, w);
  for (auto& t : opt.trainable()) t.mutable_grad() = torch::full_like(t, 0.5);
  int64_t n = 0;
  for (const auto& t : opt.trainable()) n += t.numel();
  EXPECT_NEAR(opt.clip_gradients(), 0.5 * std::sqrt(static_cast<double>(n)), 1e-9);  // the plain norm
}

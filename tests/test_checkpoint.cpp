// Checkpoints (train/checkpoint): weights/optimizer/loader round trips, retention, incomplete and
// abandoned directories, and damaged files (state.json fields, dtypes, non-finite values,
// checksums) that are one-line errors naming the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "support/test_util.h"
#include "support/tiny_model.h"
#include "train/checkpoint.h"
#include "train/outer_optimizer.h"
#include "ttt/sequence_loss.h"
#include "util/file_io.h"
#include "util/process_tag.h"
#include "util/safetensors.h"

using namespace ttt;
using ttt::testing::expect_one_line_error;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) { return ttt::testing::fresh_temp_dir("checkpoint_" + name); }

std::string temp_dir_of(int64_t step, const std::string& tag) { return ".tmp-" + std::to_string(step) + "-" + tag; }

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

// A checkpoint of the tiny model with optimizer state, in dir/0.
fs::path saved_checkpoint(const fs::path& dir, const Config& c) {
  auto w = ModelWeights::initialize(c.model, 1);
  OuterOptimizer opt(c.training.optimizer_outer, c.training.spec_outer, w);
  take_one_step(c, w, opt);
  Checkpointer(dir.string(), {3}).save(TrainState{0, 1, true, {}}, w, &opt, c, false);
  return dir / "0";
}

}  // namespace

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
  const pid_t exited = ttt::testing::exited_pid();
  const std::string dead = temp_dir_of(7, process_tag_of(exited));
  const std::string legacy = temp_dir_of(6, std::to_string(ttt::testing::exited_pid()));  // an earlier version's
  const std::string live = temp_dir_of(8, process_tag());
  const std::string elsewhere = temp_dir_of(9, "another-host-1-" + std::to_string(exited));
  const std::string other_namespace =
      temp_dir_of(10, process_tag_of(exited).replace(process_tag_of(exited).rfind('-'), 1, "9-"));
  for (const auto& name : {dead, legacy, live, elsewhere, other_namespace}) fs::create_directories(dir / name);
  Checkpointer again(dir.string(), {2});
  EXPECT_FALSE(fs::exists(dir / dead));
  EXPECT_FALSE(fs::exists(dir / legacy));
  EXPECT_TRUE(fs::exists(dir / live));
  EXPECT_TRUE(fs::exists(dir / elsewhere));
  EXPECT_TRUE(fs::exists(dir / other_namespace));
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

TEST(Checkpoint, DamagedStateJsonIsAnErrorNamingTheField) {
  // bad-input.md #4, #5: a loader position or step far out of range once overflowed on resume.
  auto dir = temp_dir("state_json");
  const auto step_dir = saved_checkpoint(dir, tiny_config());
  const auto state_path = (step_dir / "state.json").string();
  const std::string original = read_file(state_path);
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"\"loader_samples\": 1", "\"loader_samples\": 4611686018427387904"},
      {"\"loader_samples\": 1", "\"loader_samples\": -3"},
      {"\"loader_samples\": 1", "\"loader_samples\": \"one\""},
      {"\"step\": 0", "\"step\": 9223372036854775807"},
      {"\"step\": 0", "\"step\": 1.5"},
      {"\"format_version\": 2", "\"format_version\": 3"},
      {"\"has_optimizer_state\": true", "\"has_optimizer_state\": 1"},
  };
  for (const auto& [from, to] : edits) {
    SCOPED_TRACE(to);
    std::string text = original;
    ASSERT_NE(text.find(from), std::string::npos) << text;
    text.replace(text.find(from), from.size(), to);
    std::ofstream(state_path) << text;
    const std::string field = to.substr(1, to.find('"', 1) - 1);
    expect_one_line_error([&] { load_checkpoint_state(step_dir.string()); }, {state_path, field});
  }
  std::ofstream(state_path) << "{ not json";
  expect_one_line_error([&] { load_checkpoint_state(step_dir.string()); }, {state_path});
  fs::remove_all(dir);
}

TEST(Checkpoint, FormatOneLoaderPositionCountsBatchesOfTheGlobalBatch) {
  // Format 1 was written by one process and counted its batches; format 2 counts global samples.
  auto dir = temp_dir("state_v1");
  Config c = tiny_config();
  const auto step_dir = saved_checkpoint(dir, c);
  fs::remove(step_dir / "state.json");  // without checksums
  std::ofstream(step_dir / "state.json") << R"({"format_version": 1, "step": 0, "loader_position": 3})";
  EXPECT_EQ(load_checkpoint_state(step_dir.string()).loader_position, 3 * c.training.global_batch_size);
  fs::remove_all(dir);
}

TEST(Checkpoint, WeightsOfAnotherDtypeOrNonFiniteAreRejected) {
  // bad-input.md #7, #16: integer tensors, F32 bytes relabelled I32, NaN or infinite weights.
  auto dir = temp_dir("weights_dtype");
  const Config c = tiny_config();
  const auto step_dir = saved_checkpoint(dir, c);
  const auto model = step_dir / "model.safetensors";
  auto file = load_safetensors(model.string());
  const std::string name = "language_model.model.ln_f.weight";
  auto rewrite = [&](torch::Tensor replacement) {
    auto tensors = file.tensors;
    tensors[name] = replacement;
    std::vector<std::pair<std::string, torch::Tensor>> ordered(tensors.begin(), tensors.end());
    save_safetensors(model.string(), ordered, file.metadata);
    fs::remove(step_dir / "state.json");  // without checksums: these checks stand on their own
    std::ofstream(step_dir / "state.json") << R"({"format_version": 1, "step": 0, "loader_position": 1})";
  };
  auto w = ModelWeights::zeros(c.model, torch::kFloat32, torch::kCPU);
  const auto original = file.tensors.at(name);
  rewrite(original.to(torch::kInt32));
  expect_one_line_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {model.string(), name, "I32"});
  rewrite(torch::from_blob(original.data_ptr(), original.sizes(), torch::kInt32).clone());  // same bytes, relabelled
  expect_one_line_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {model.string(), name, "I32"});
  rewrite(original.to(torch::kBool));
  expect_one_line_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {model.string(), name});
  auto nan = original.clone();
  nan[0] = std::nan("");
  rewrite(nan);
  expect_one_line_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {model.string(), name, "non-finite"});
  auto inf = original.clone();
  inf[1] = INFINITY;
  rewrite(inf);
  expect_one_line_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {model.string(), name, "non-finite"});
  fs::remove_all(dir);
}

TEST(Checkpoint, DamagedFilesFailTheirChecksumAndAMissingOptimizerIsNamed) {
  // bad-input.md #19, #20: bit flips in tensor data and a garbage config.yaml were resumed from
  // silently; a missing optimizer file was reported as saved without one.
  auto dir = temp_dir("checksums");
  const Config c = tiny_config();
  const auto step_dir = saved_checkpoint(dir, c);
  auto w = ModelWeights::zeros(c.model, torch::kFloat32, torch::kCPU);
  OuterOptimizer opt(c.training.optimizer_outer, c.training.spec_outer, w);
  EXPECT_NO_THROW(load_checkpoint_weights(step_dir.string(), w));
  EXPECT_NO_THROW(load_checkpoint_optimizer(step_dir.string(), opt));
  EXPECT_NO_THROW(load_checkpoint_config(step_dir.string()));
  auto flip = [](const fs::path& file, int64_t offset_from_end) {
    std::string bytes = read_file(file);
    bytes[bytes.size() - offset_from_end] ^= 0x10;
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  };
  const auto backup = dir / "backup";
  fs::copy(step_dir, backup, fs::copy_options::recursive);
  flip(step_dir / "model.safetensors", 5);
  expect_one_line_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {"model.safetensors", "checksum"});
  flip(step_dir / "optimizer.safetensors", 9);
  expect_one_line_error([&] { load_checkpoint_optimizer(step_dir.string(), opt); },
                        {"optimizer.safetensors", "checksum"});
  std::ofstream(step_dir / "config.yaml", std::ios::app) << "# appended garbage\n";
  expect_one_line_error([&] { load_checkpoint_config(step_dir.string()); }, {"config.yaml", "checksum"});
  fs::remove(backup / "optimizer.safetensors");
  expect_one_line_error([&] { load_checkpoint_optimizer(backup.string(), opt); }, {"optimizer.safetensors", "missing"});
  fs::remove_all(dir);
}

TEST(Checkpoint, NonFiniteWeightsAreNeverWritten) {
  // bad-input.md #14: an infinite learning rate once produced a checkpoint of non-finite tensors.
  auto dir = temp_dir("nonfinite");
  const Config c = tiny_config();
  Checkpointer ck(dir.string(), {3});
  auto w = ModelWeights::initialize(c.model, 1);
  ck.save(TrainState{0, 1, true, {}}, w, nullptr, c, false);
  w.tensors()[3].view(-1)[0] = std::nan("");
  expect_one_line_error(
      [&] {
        ck.save(TrainState{1, 2, true, {}}, w, nullptr, c, false);
      },
      {"checkpoint 1", "not finite"});
  EXPECT_EQ(complete_checkpoint_steps(dir.string()), std::vector<int64_t>{0});
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.path().filename() != "0";
  EXPECT_EQ(entries, 0u) << "the failed save left its temporary directory";
  fs::remove_all(dir);
}

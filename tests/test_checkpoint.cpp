// Checkpoints: safetensors round trip and validation, weights/optimizer/loader round trip,
// retention, incomplete directories, shape mismatches, the outer optimiser and schedule.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "support/tiny_model.h"
#include "train/checkpoint.h"
#include "train/lr_schedule.h"
#include "train/outer_optimizer.h"
#include "ttt/sequence_loss.h"
#include "util/file_io.h"
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

namespace {

// A safetensors file written by hand: the header text, then `data`.
void write_raw_safetensors(const fs::path& path, const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  std::ofstream(path, std::ios::binary) << bytes << header << data;
}

// Runs `fn`, expecting a one-line std::runtime_error whose message holds every one of `parts`.
template <typename Fn>
void expect_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    for (const auto& part : parts) EXPECT_NE(what.find(part), std::string::npos) << what;
    return;
  }
  ADD_FAILURE() << "expected an error mentioning " << parts.front();
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

TEST(Safetensors, HostileHeadersAreErrorsBeforeAnyAllocation) {
  // bad-input.md #7: a shape claiming terabytes, dtypes and ranges that do not match, overlaps and
  // a non-string metadata value are errors naming the file and tensor, found from the header and
  // the file size alone.
  auto dir = temp_dir("st_hostile");
  const auto path = dir / "x.safetensors";
  const std::string data(16, '\0');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"a":{"dtype":"F32","shape":[1099511627776,1024],"data_offsets":[0,16]}})", "tensor 'a'"},
      {R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,16]}})", "tensor 'a'"},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,1000]}})", "outside"},
      {R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,16]}})", "does not match its shape"},
      {R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", "not a size"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       "overlap"},
      {R"({"a":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}})", "unsupported dtype"},
      {R"({"__metadata__":{"step":7},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "__metadata__"},
      {R"({"__metadata__":[1],"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "__metadata__"},
      {R"({"a":7})", "tensor 'a'"},
      {R"([1,2])", "not a JSON object"},
  };
  for (const auto& [header, part] : cases) {
    SCOPED_TRACE(header);
    write_raw_safetensors(path, header, data);
    expect_error([&] { load_safetensors(path.string()); }, {path.string(), part});
    expect_error([&] { parse_safetensors(read_file(path), "in-memory"); }, {"in-memory", part});
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
      {"\"loader_position\": 1", "\"loader_position\": 4611686018427387904"},
      {"\"loader_position\": 1", "\"loader_position\": -3"},
      {"\"loader_position\": 1", "\"loader_position\": \"one\""},
      {"\"step\": 0", "\"step\": 9223372036854775807"},
      {"\"step\": 0", "\"step\": 1.5"},
      {"\"format_version\": 1", "\"format_version\": 2"},
      {"\"has_optimizer_state\": true", "\"has_optimizer_state\": 1"},
  };
  for (const auto& [from, to] : edits) {
    SCOPED_TRACE(to);
    std::string text = original;
    ASSERT_NE(text.find(from), std::string::npos) << text;
    text.replace(text.find(from), from.size(), to);
    std::ofstream(state_path) << text;
    const std::string field = to.substr(1, to.find('"', 1) - 1);
    expect_error([&] { load_checkpoint_state(step_dir.string()); }, {state_path, field});
  }
  std::ofstream(state_path) << "{ not json";
  expect_error([&] { load_checkpoint_state(step_dir.string()); }, {state_path});
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
  expect_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {model.string(), name, "I32"});
  rewrite(torch::from_blob(original.data_ptr(), original.sizes(), torch::kInt32).clone());  // same bytes, relabelled
  expect_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {model.string(), name, "I32"});
  rewrite(original.to(torch::kBool));
  expect_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {model.string(), name});
  auto nan = original.clone();
  nan[0] = std::nan("");
  rewrite(nan);
  expect_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {model.string(), name, "non-finite"});
  auto inf = original.clone();
  inf[1] = INFINITY;
  rewrite(inf);
  expect_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {model.string(), name, "non-finite"});
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
  expect_error([&] { load_checkpoint_weights(step_dir.string(), w); }, {"model.safetensors", "checksum"});
  flip(step_dir / "optimizer.safetensors", 9);
  expect_error([&] { load_checkpoint_optimizer(step_dir.string(), opt); }, {"optimizer.safetensors", "checksum"});
  std::ofstream(step_dir / "config.yaml", std::ios::app) << "# appended garbage\n";
  expect_error([&] { load_checkpoint_config(step_dir.string()); }, {"config.yaml", "checksum"});
  fs::remove(backup / "optimizer.safetensors");
  expect_error([&] { load_checkpoint_optimizer(backup.string(), opt); }, {"optimizer.safetensors", "missing"});
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
  expect_error([&] { ck.save(TrainState{1, 2, true, {}}, w, nullptr, c, false); }, {"checkpoint 1", "not finite"});
  EXPECT_EQ(complete_checkpoint_steps(dir.string()), std::vector<int64_t>{0});
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.path().filename() != "0";
  EXPECT_EQ(entries, 0u) << "the failed save left its temporary directory";
  fs::remove_all(dir);
}

// Configuration system: composition of the official and tiny experiment trees, command-line
// overrides, interpolation, typed conversion errors, validation, and the to_yaml round trip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/fields.h"
#include "config/loader.h"
#include "config/validate.h"
#include "util/strings.h"

namespace ttt {
namespace {

namespace fs = std::filesystem;

const std::string kConfigDir = TTT_SOURCE_DIR "/configs";

Config load(const std::vector<std::string>& words, bool validate = true) {
  LoadOptions options;
  options.config_dir = kConfigDir;
  options.validate = validate;
  return load_config(words, options);
}

// Runs `fn`, expecting a one-line ConfigError whose message contains every one of `parts`.
template <typename Fn>
void expect_config_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
    return;
  }
  ADD_FAILURE() << "expected a ConfigError mentioning " << join(parts, ", ");
}

void expect_load_error(const std::vector<std::string>& words, const std::vector<std::string>& parts) {
  expect_config_error([&] { load(words); }, parts);
}

// Facts from the official experiment table (docs: reference spec section 9).
struct SizeFacts {
  std::string size;
  int64_t layers, hidden, heads, mlp_fa, mlp_e2e, suffix, pretrain_steps, pretrain_batch;
  double peak_lr;
  int64_t ext_steps;
};

const std::vector<SizeFacts> kSizes = {
    {"125m", 12, 768, 12, 2048, 1664, 3, 4800, 64, 3e-3, 120},
    {"350m", 24, 1024, 16, 2816, 2304, 6, 13500, 64, 1.5e-3, 337},
    {"760m", 24, 1536, 16, 4096, 3328, 6, 29000, 64, 1.25e-3, 725},
    {"1b", 24, 2048, 32, 5376, 4352, 6, 50000, 64, 1e-3, 1250},
    {"3b", 32, 2560, 32, 6912, 5632, 8, 52000, 128, 8e-4, 1300},
};

void expect_common_model(const Config& c, const SizeFacts& s, bool e2e) {
  EXPECT_EQ(c.model.name, s.size);
  EXPECT_EQ(c.model.vocab_size, 128256);
  EXPECT_EQ(c.model.bos_token_id, 128000);
  EXPECT_EQ(c.model.eos_token_id, 128001);
  EXPECT_EQ(c.model.num_hidden_layers, s.layers);
  EXPECT_EQ(c.model.hidden_size, s.hidden);
  EXPECT_EQ(c.model.num_attention_heads, s.heads);
  EXPECT_TRUE(c.model.tie_word_embeddings);
  EXPECT_EQ(c.model.intermediate_size, e2e ? s.mlp_e2e : s.mlp_fa);
  EXPECT_EQ(to_string(c.model.seq_modeling_block), e2e ? "SWA" : "self_attention");
  EXPECT_EQ(c.model.suffix_len, e2e ? s.suffix : 0);
  EXPECT_EQ(c.model.prime, e2e);
  EXPECT_EQ(to_string(c.training.train_mode), e2e ? "meta" : "pretrain");
  if (e2e) {
    EXPECT_EQ(c.model.mini_batch_size, 1024);
    EXPECT_EQ(c.model.sliding_window_size, 8192);
    EXPECT_EQ(c.model.rope_theta, 500000.0);
    EXPECT_EQ(c.training.spec_inner, std::vector<std::string>{"language_model.**.suffix_blocks.feed_forward_prime.**"});
    EXPECT_EQ(to_string(c.training.optimizer_inner.optimizer_type), "sgd");
    EXPECT_EQ(c.training.optimizer_inner.lr, 1.0);
    EXPECT_EQ(c.training.optimizer_inner.clip_gradient, 1.0);
  } else {
    EXPECT_EQ(c.model.remat_block, "nothing_saveable");
    EXPECT_TRUE(c.model.force_flash);
  }
}

TEST(OfficialExperiments, PretrainingMatchesTheTable) {
  for (const SizeFacts& s : kSizes) {
    for (const bool e2e : {true, false}) {
      const std::string name = "pretrain-" + s.size + (e2e ? "-e2e" : "-fa");
      SCOPED_TRACE(name);
      const Config c = load({"+experiment=" + s.size + "/pretrain/" + name});
      expect_common_model(c, s, e2e);
      EXPECT_EQ(c.training.exp_name, name);
      EXPECT_EQ(c.training.dataset_name, "dclm_filter_8k");
      EXPECT_EQ(c.training.seq_length, 8192);
      EXPECT_EQ(c.training.global_batch_size, s.pretrain_batch);
      EXPECT_EQ(c.training.total_steps, s.pretrain_steps);
      EXPECT_EQ(c.training.optimizer_outer.lr, s.peak_lr);
      EXPECT_EQ(c.training.optimizer_outer.lr_warmup_steps, s.pretrain_steps / 10);
      EXPECT_EQ(c.training.optimizer_outer.lr_decay_steps, s.pretrain_steps);
      EXPECT_EQ(c.training.ilr_warmup_steps, s.pretrain_steps / 10);
      if (e2e) EXPECT_EQ(c.training.ilr_init, 0.1);
      if (!e2e) EXPECT_EQ(c.model.mini_batch_size, 8192);
      if (!e2e) EXPECT_EQ(c.model.rope_theta, 500000.0);
    }
  }
}

TEST(OfficialExperiments, ExtensionsMatchTheTable) {
  std::vector<std::pair<const SizeFacts*, std::string>> runs;
  for (const SizeFacts& s : kSizes) runs.emplace_back(&s, "32K");
  runs.emplace_back(&kSizes.back(), "128K");
  int loaded = 0;
  for (const auto& [s, context] : runs) {
    const int64_t seq = context == "32K" ? 32768 : 131072;
    const int64_t batch = context == "128K" ? 16 : (s->size == "3b" ? 64 : 32);
    for (const bool e2e : {true, false}) {
      const std::string name = "ext-" + s->size + (e2e ? "-e2e-" : "-fa-") + context;
      SCOPED_TRACE(name);
      const Config c = load({"+experiment=" + s->size + "/extension/" + name});
      ++loaded;
      expect_common_model(c, *s, e2e);
      EXPECT_EQ(c.training.exp_name, name);
      EXPECT_EQ(c.training.dataset_name, "books3");
      EXPECT_EQ(c.training.seq_length, seq);
      EXPECT_EQ(c.training.global_batch_size, batch);
      EXPECT_EQ(c.training.total_steps, s->ext_steps);
      EXPECT_EQ(c.training.optimizer_outer.lr, 4e-4);
      EXPECT_EQ(c.training.optimizer_outer.lr_decay_steps, s->ext_steps);
      EXPECT_EQ(c.training.ilr_warmup_steps, 0);
      if (e2e) EXPECT_EQ(c.training.ilr_init, 1.0);
      if (!e2e) EXPECT_EQ(c.model.mini_batch_size, seq);
      if (!e2e) EXPECT_EQ(c.model.rope_theta, context == "32K" ? 2e6 : 1e7);
    }
  }
  EXPECT_EQ(loaded, 12);  // with the 10 pretraining runs: all 22 official experiments
}

TEST(OfficialExperiments, Ext3bE2e128K) {
  const Config c = load({"+experiment=3b/extension/ext-3b-e2e-128K"});
  EXPECT_EQ(c.training.seq_length, 131072);
  EXPECT_EQ(c.model.suffix_len, 8);
  EXPECT_EQ(c.model.intermediate_size, 5632);
  EXPECT_EQ(c.model.hidden_size, 2560);
  EXPECT_EQ(c.model.num_hidden_layers, 32);
  EXPECT_EQ(c.model.num_attention_heads, 32);
  EXPECT_EQ(c.model.rope_theta, 500000.0);
  EXPECT_EQ(c.model.mini_batch_size, 1024);
  EXPECT_EQ(c.model.sliding_window_size, 8192);
  EXPECT_EQ(c.training.optimizer_outer.lr, 4e-4);
  EXPECT_EQ(c.training.optimizer_outer.lr_warmup_steps, 130);
  EXPECT_EQ(c.training.total_steps, 1300);
  EXPECT_EQ(c.training.global_batch_size, 16);
  EXPECT_EQ(to_string(c.training.train_mode), "meta");
  EXPECT_TRUE(c.model.unroll_block_scan);
  EXPECT_FALSE(c.model.force_flash);
}

TEST(OfficialExperiments, Pretrain125mFa) {
  const Config c = load({"+experiment=125m/pretrain/pretrain-125m-fa"});
  EXPECT_EQ(to_string(c.model.seq_modeling_block), "self_attention");
  EXPECT_EQ(c.model.mini_batch_size, 8192);
  EXPECT_EQ(c.model.rope_theta, 500000.0);
  EXPECT_EQ(c.model.remat_block_bwd, "nothing_saveable");
  EXPECT_EQ(c.model.remat_prefix_block, "nothing_saveable");  // typed default kept
  EXPECT_EQ(c.backend.device, "cpu");
}

TEST(Experiments, EveryFileInTheTreeLoadsAndValidates) {
  int loaded = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kConfigDir + "/experiment")) {
    if (entry.path().extension() != ".yaml") continue;
    auto name = fs::relative(entry.path(), kConfigDir + "/experiment").replace_extension("").string();
    SCOPED_TRACE(name);
    EXPECT_NO_THROW(load({"+experiment=" + name}));
    ++loaded;
  }
  EXPECT_GT(loaded, 40);
}

TEST(ScalingExperiments, ShareTheirWindowAndDifferInAttentionAndTraining) {
  // scripts/context_scaling.sh: pretraining at 128 (4x the window), extension to 512 (16x).
  for (const std::string phase : {"pretrain", "ext"}) {
    SCOPED_TRACE(phase);
    const Config e2e = load({"+experiment=scaling/" + phase + "-e2e"});
    const Config swa = load({"+experiment=scaling/" + phase + "-swa"});
    const Config fa = load({"+experiment=scaling/" + phase + "-fa"});
    const int64_t length = phase == "pretrain" ? 128 : 512;
    for (const Config* c : {&e2e, &swa, &fa}) {
      EXPECT_EQ(c->training.seq_length, length);
      EXPECT_EQ(c->training.seq_length * c->training.global_batch_size, 4096);
      EXPECT_EQ(c->model.num_hidden_layers, 4);
    }
    EXPECT_EQ(to_string(e2e.training.train_mode), "meta");
    EXPECT_EQ(e2e.model.sliding_window_size, 32);
    EXPECT_EQ(e2e.model.mini_batch_size, 16);
    EXPECT_EQ(to_string(swa.training.train_mode), "pretrain");
    EXPECT_EQ(swa.model.sliding_window_size, 32);
    EXPECT_EQ(to_string(fa.model.seq_modeling_block), "self_attention");
    EXPECT_EQ(fa.model.rope_theta, phase == "pretrain" ? 500000.0 : 2000000.0);
  }
}

TEST(TinyExperiments, AllLoadAndValidate) {
  for (const std::string name :
       {"pretrain/pretrain-tiny-e2e", "pretrain/pretrain-tiny-swa", "pretrain/pretrain-tiny-fa",
        "extension/ext-tiny-e2e-4K", "extension/ext-tiny-swa-4K", "extension/ext-tiny-fa-4K"}) {
    SCOPED_TRACE(name);
    const Config c = load({"+experiment=tiny/" + name});
    const bool extension = starts_with(name, "extension");
    EXPECT_EQ(c.model.vocab_size, 258);
    EXPECT_EQ(c.model.bos_token_id, 256);
    EXPECT_EQ(c.model.eos_token_id, 257);
    EXPECT_EQ(c.model.num_hidden_layers, 4);
    EXPECT_EQ(c.model.hidden_size, 128);
    EXPECT_EQ(to_string(c.model.compute_dtype), "fp32");
    EXPECT_EQ(c.training.dataset_name, "gutenberg");
    EXPECT_EQ(c.training.dataset_path, "./data/gutenberg-byte");
    EXPECT_EQ(c.training.seq_length, extension ? 4096 : 1024);
    EXPECT_EQ(c.training.global_batch_size, extension ? 4 : 8);
    EXPECT_EQ(c.training.total_steps, extension ? 60 : 300);
    EXPECT_EQ(c.training.optimizer_outer.lr, extension ? 4e-4 : 3e-3);
    EXPECT_EQ(c.training.ilr_warmup_steps, extension ? 0 : 30);
    if (name.find("e2e") != std::string::npos) {
      EXPECT_EQ(to_string(c.training.train_mode), "meta");
      EXPECT_EQ(c.model.suffix_len, 1);
      EXPECT_EQ(c.model.intermediate_size, 416);
      EXPECT_EQ(c.model.mini_batch_size, 128);
      EXPECT_EQ(c.model.sliding_window_size, 1024);
      EXPECT_EQ(c.training.ilr_init, extension ? 1.0 : 0.1);
    } else {
      EXPECT_EQ(to_string(c.training.train_mode), "pretrain");
      EXPECT_EQ(c.model.mini_batch_size, c.training.seq_length);
      EXPECT_EQ(c.model.intermediate_size, 512);
    }
    if (name.find("-fa") != std::string::npos) {
      EXPECT_EQ(to_string(c.model.seq_modeling_block), "self_attention");
      EXPECT_EQ(c.model.rope_theta, extension ? 2e6 : 5e5);
    }
  }
}

TEST(Composition, DefaultsAloneAreValid) {
  const Config c = load({});
  EXPECT_EQ(c.backend.device, "cpu");
  EXPECT_EQ(c.backend.backend, "cpu");
  EXPECT_EQ(c.model.hidden_size, 768);
  EXPECT_FALSE(c.training.exp_name.has_value());
  EXPECT_FALSE(c.checkpoint.checkpoint_dir.has_value());  // reaches the missing exp_name
  EXPECT_FALSE(c.training.dataset_path.has_value());      // dataset_name is missing
  EXPECT_EQ(c.checkpoint.resume_checkpoint_dir, "./checkpoints/demo/");
  EXPECT_EQ(c.training.spec_inner, std::vector<std::string>{"**"});
}

TEST(Composition, CommandLineGroupsReplaceDefaultsAndBeatFileOverrides) {
  const Config c = load({"+experiment=125m/pretrain/pretrain-125m-fa", "model=350m", "backend=gpu"});
  EXPECT_EQ(c.model.hidden_size, 1024);      // model=350m wins over the experiment's override /model: 125m
  EXPECT_EQ(c.model.mini_batch_size, 8192);  // the experiment's own keys still apply
  EXPECT_EQ(c.backend.device, "cuda");
  EXPECT_EQ(c.backend.backend, "gpu");
  const Config t = load({"training=125m/ext", "training.seq_length=2048"});
  EXPECT_EQ(t.training.total_steps, 120);
  EXPECT_EQ(t.training.dataset_name, "books3");
}

TEST(Composition, DeployInteractive) {
  const Config c = load({"+deploy=interactive", "+experiment=125m/pretrain/pretrain-125m-e2e"});
  EXPECT_EQ(c.backend.num_processes, 1);
  EXPECT_EQ(c.backend.process_id, 0);
  EXPECT_FALSE(c.deploy_paths.data.at("books3").has_value());
  EXPECT_EQ(c.deploy_paths.data.at("gutenberg"), "./data/gutenberg-byte");
}

TEST(Interpolation, CheckpointDirs) {
  const Config c = load({"+experiment=125m/pretrain/pretrain-125m-e2e"});
  EXPECT_EQ(c.checkpoint.checkpoint_dir, "./checkpoints/demo/pretrain-125m-e2e");
  const Config d =
      load({"+experiment=125m/extension/ext-125m-e2e-32K", "training.checkpoint_path=/ck", "training.exp_folder=runs",
            "training.resume_exp_name=pretrain-125m-e2e", "training.load_part=params"});
  EXPECT_EQ(d.deploy_paths.checkpoint, "/ck");
  EXPECT_EQ(d.checkpoint.checkpoint_dir, "/ck/runs/ext-125m-e2e-32K");
  EXPECT_EQ(d.checkpoint.resume_checkpoint_dir, "/ck/runs/pretrain-125m-e2e");
}

TEST(Interpolation, DatasetPathThroughDeployPaths) {
  const std::string ext = "+experiment=125m/extension/ext-125m-e2e-32K";
  const Config c = load({"+deploy=interactive", ext, "deploy_paths.data.books3=/x"});
  EXPECT_EQ(c.training.dataset_path, "/x");
  for (const auto& words : {std::vector<std::string>{ext}, std::vector<std::string>{"+deploy=interactive", ext}}) {
    const Config missing = load(words);
    EXPECT_FALSE(missing.training.dataset_path.has_value());
    expect_config_error([&] { require(missing.training.dataset_path, "training.dataset_path"); },
                        {"training.dataset_path"});
  }
  EXPECT_EQ(load({ext, "+deploy_paths.data.books3=/y"}).training.dataset_path, "/y");
  EXPECT_EQ(load({ext, "training.dataset_path=/direct"}).training.dataset_path, "/direct");
  EXPECT_FALSE(load({"+experiment=tiny/pretrain/pretrain-tiny-e2e", "~deploy_paths.data.gutenberg"})
                   .training.dataset_path.has_value());
}

TEST(Interpolation, EnvironmentNestedAndErrors) {
  setenv("TTT_TEST_BOOKS3", "/env/books3", 1);
  unsetenv("TTT_TEST_UNSET");
  const std::string ext = "+experiment=125m/extension/ext-125m-e2e-32K";
  EXPECT_EQ(load({ext, "deploy_paths.data.books3=${oc.env:TTT_TEST_BOOKS3}"}).training.dataset_path, "/env/books3");
  EXPECT_EQ(load({ext, "deploy_paths.data.books3=${oc.env:TTT_TEST_UNSET,/fallback}"}).training.dataset_path,
            "/fallback");
  EXPECT_EQ(load({"model.output_size=${model.vocab_size}", "model=125m"}).model.output_size, 128256);
  EXPECT_EQ(load({"training.exp_name=a-${training.seq_length}-b"}).training.exp_name, "a-1024-b");
  expect_load_error({"training.exp_folder=${training.exp_dir}", "training.exp_dir=${training.exp_folder}"}, {"cycle"});
  expect_load_error({"training.exp_folder=${training.nope}"}, {"training.exp_folder", "training.nope"});
  expect_load_error({"training.exp_folder=${model}"}, {"section"});
  expect_load_error({"training.exp_folder=${oc.env:TTT_TEST_UNSET}"}, {"TTT_TEST_UNSET"});
}

TEST(Overrides, ValuesParseAsYamlScalarsAndLists) {
  const Config c = load({"training.spec_inner=[a, 'b,c', \"language_model.**.x\"]", "training.spec_outer=[]",
                         "training.optimizer_outer.lr=1e-5", "model.qk_norm=false", "training.resume_step=null",
                         "training.n_data_parallel=4", "training.exp_name=???", "training.exp_folder="});
  EXPECT_EQ(c.training.spec_inner, (std::vector<std::string>{"a", "b,c", "language_model.**.x"}));
  EXPECT_TRUE(c.training.spec_outer.empty());
  EXPECT_EQ(c.training.optimizer_outer.lr, 1e-5);
  EXPECT_FALSE(c.model.qk_norm);
  EXPECT_FALSE(c.training.resume_step.has_value());
  EXPECT_EQ(c.training.n_data_parallel, 4);
  EXPECT_FALSE(c.training.exp_name.has_value());
  EXPECT_EQ(c.training.exp_folder, "");
  EXPECT_EQ(to_string(load({"model.compute_dtype=bfloat16", "model.param_dtype=float32"}).model.compute_dtype), "bf16");
  EXPECT_EQ(load({"backend.device=cuda:1"}).backend.device, "cuda:1");
}

TEST(Errors, UnknownKeysSuggestTheClosest) {
  expect_load_error({"model.hiden_size=5"}, {"unknown key 'model.hiden_size'", "did you mean 'model.hidden_size'"});
  expect_load_error({"training.hidden_size=5"}, {"training.hidden_size", "model.hidden_size"});
  expect_load_error({"modle.name=x"}, {"modle.name", "model.name"});
  expect_load_error({"+model.foo=1"}, {"model.foo", "deploy_paths.data"});
  expect_load_error({"+training.seq_length=5"}, {"training.seq_length", "already exists"});
  expect_load_error({"~model.name"}, {"model.name"});
  expect_load_error({"model.hidden_size"}, {"model.hidden_size", "key=value"});
  expect_load_error({"training.optimizer_outer=3"}, {"training.optimizer_outer", "section"});
}

TEST(Errors, WrongTypesNameTheKey) {
  expect_load_error({"model.hidden_size=abc"}, {"model.hidden_size: expected an integer, got 'abc'"});
  expect_load_error({"model.hidden_size=1.5"}, {"model.hidden_size", "integer"});
  expect_load_error({"model.rope_theta=fast"}, {"model.rope_theta", "number"});
  expect_load_error({"model.prime=maybe"}, {"model.prime", "true or false"});
  expect_load_error({"training.spec_inner=abc"}, {"training.spec_inner", "list"});
  expect_load_error({"model.hidden_size=???"}, {"model.hidden_size", "missing"});
  expect_load_error({"model.name=null"}, {"model.name", "string", "null"});
}

TEST(Errors, MissingConfigsAndGroups) {
  expect_load_error({"+experiment=125m/pretrain/nope"},
                    {"no config 'experiment/125m/pretrain/nope'", "looked for", "nope.yaml", "pretrain-125m-fa"});
  expect_load_error({"+experiment=125m/pretrain/pretrain-125m-e3e"},
                    {"did you mean '125m/pretrain/pretrain-125m-e2e'"});
  expect_load_error({"model=125M"}, {"model/125M", "125m"});
  expect_load_error({"deploy=interactive"}, {"+deploy=interactive"});
  expect_load_error({"+model=125m"}, {"model=125m"});
  expect_config_error([] { load_config({}, LoadOptions{"/nonexistent/configs", true}); }, {"config.yaml"});
}

// A scratch copy of the config tree, for files with mistakes in them.
class ScratchTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(TTT_BINARY_DIR) / ("config-scratch-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::copy(kConfigDir, root_, fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(root_ / name) << text; }
  Config load_from(const std::vector<std::string>& words) {
    return load_config(words, LoadOptions{root_.string(), true});
  }
  fs::path root_;
};

TEST_F(ScratchTree, ErrorsInFilesNameKeyAndFile) {
  write("experiment/typo.yaml", "# @package _global_\nmodel:\n  hiden_size: 5\n");
  expect_config_error([&] { load_from({"+experiment=typo"}); },
                      {"model.hiden_size", "model.hidden_size", "experiment/typo.yaml"});
  write("experiment/nopkg.yaml", "model:\n  hidden_size: 5\n");  // lands under experiment.*
  expect_config_error([&] { load_from({"+experiment=nopkg"}); }, {"experiment.model"});
  write("experiment/badover.yaml", "# @package _global_\ndefaults:\n  - override /nothing: x\n");
  expect_config_error([&] { load_from({"+experiment=badover"}); }, {"nothing", "badover.yaml"});
  write("experiment/broken.yaml", "model: [1,\n");
  expect_config_error([&] { load_from({"+experiment=broken"}); }, {"broken.yaml"});
  write("experiment/self_first.yaml",
        "# @package _global_\ndefaults:\n  - _self_\n  - override /model: 350m\nmodel:\n  hidden_size: 512\n");
  // _self_ first: the group's file is merged at its place in config.yaml, still under this file's keys.
  EXPECT_EQ(load_from({"+experiment=self_first"}).model.hidden_size, 512);
  write("deploy/cluster.yaml", "# @package _global_\nhydra:\n  mode: RUN\ndeploy_paths:\n  data:\n    books3: /b3\n");
  EXPECT_EQ(load_from({"+deploy=cluster"}).deploy_paths.data.at("books3"), "/b3");  // hydra: is Hydra's own
  write("model/plain.yaml", "defaults:\n  - base_model\n  - _self_\nhidden_size: 256\nnum_attention_heads: 4\n");
  EXPECT_EQ(load_from({"model=plain"}).model.hidden_size, 256);
}

TEST(Validation, EachCheckNamesItsKey) {
  const std::string e2e = "+experiment=tiny/pretrain/pretrain-tiny-e2e";
  const std::string fa = "+experiment=tiny/pretrain/pretrain-tiny-fa";
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases = {
      {{e2e, "training.seq_length=1000"}, {"training.seq_length", "model.mini_batch_size"}},
      {{e2e, "model.suffix_len=5"}, {"model.suffix_len"}},
      {{fa, "model.suffix_len=-1"}, {"model.suffix_len"}},
      {{e2e, "model.num_attention_heads=3"}, {"model.hidden_size", "model.num_attention_heads"}},
      {{e2e, "model.hidden_size=132"}, {"head dim", "RoPE"}},
      {{e2e, "model.seq_modeling_block=mamba"}, {"model.seq_modeling_block", "mamba"}},
      {{e2e, "training.train_mode=finetune"}, {"training.train_mode"}},
      {{e2e, "training.load_part=some"}, {"training.load_part"}},
      {{e2e, "training.optimizer_outer.optimizer_type=lion"}, {"training.optimizer_outer.optimizer_type"}},
      {{e2e, "training.optimizer_inner.optimizer_type=lion"}, {"training.optimizer_inner.optimizer_type"}},
      {{e2e, "model.compute_dtype=fp16"}, {"model.compute_dtype"}},
      {{e2e, "model.param_dtype=fp16"}, {"model.param_dtype"}},
      {{e2e, "model.state_dtype=fp8"}, {"model.state_dtype"}},
      {{e2e, "backend.device=tpu"}, {"backend.device"}},
      {{e2e, "backend.device=cuda:x"}, {"backend.device"}},
      {{fa, "model.prime=true"}, {"model.prime", "model.suffix_len"}},
      {{e2e, "model.prime=false", "model.suffix_len=0"}, {"training.train_mode", "model.suffix_len"}},
      {{e2e, "training.accum_steps=3"}, {"training.global_batch_size", "training.accum_steps"}},
      {{e2e, "model.resid_pdrop=0.1"}, {"model.resid_pdrop", "not supported"}},
      {{e2e, "model.embd_pdrop=0.1"}, {"model.embd_pdrop", "not supported"}},
      {{e2e, "model.attn_pdrop=0.1"}, {"model.attn_pdrop", "not supported"}},
      {{e2e, "training.log_wandb=true"}, {"training.log_wandb", "metrics.jsonl"}},
      {{e2e, "model.feed_forward_prime=gelu"}, {"model.feed_forward_prime"}},
      {{e2e, "model.intermediate_size=0"}, {"model.intermediate_size", "positive"}},
      {{e2e, "training.global_batch_size=-8"}, {"training.global_batch_size", "positive"}},
      {{e2e, "model.bos_token_id=258"}, {"model.bos_token_id", "vocabulary"}},
      {{e2e, "model.eos_token_id=-1"}, {"model.eos_token_id", "vocabulary"}},
      {{e2e, "training.n_state_parallel=2"}, {"training.n_state_parallel", "not supported"}},
      {{e2e, "backend.dist_timeout_s=0"}, {"backend.dist_timeout_s"}},
      {{e2e, "backend.bucket_size_mb=0"}, {"backend.bucket_size_mb"}},
      {{e2e, "training.copy_spans=-1"}, {"training.copy_spans"}},
      {{e2e, "training.copy_spans=2", "training.copy_span_length=513"}, {"training.copy_span_length", "half"}},
      {{e2e, "backend.process_id=-1"}, {"backend.process_id"}},
      {{e2e, "training.optimizer_inner.optimizer_type=adamw"}, {"training.optimizer_inner.optimizer_type", "sgd"}},
      {{e2e, "training.optimizer_outer.lr_decay_steps=30"},
       {"training.optimizer_outer.lr_decay_steps", "lr_warmup_steps"}},
  };
  for (const auto& [words, parts] : cases) {
    SCOPED_TRACE(join(words, " "));
    expect_load_error(words, parts);
  }
  // The same settings load when validation is off, and validate_config rejects them afterwards.
  const Config unchecked = load({e2e, "training.seq_length=1000"}, /*validate=*/false);
  EXPECT_EQ(unchecked.training.seq_length, 1000);
  expect_config_error([&] { validate_config(unchecked); }, {"training.seq_length"});
}

TEST(Validation, EveryNumericFieldIsBoundedAndFinite) {
  // Regressions of shared/findings/bad-input.md #1-#3, #14, #15: out-of-range sizes (which once
  // allocated without bound before failing), counts that overflowed, and non-finite or absurd
  // floats are one-line errors naming the key, before anything is built.
  const std::string e2e = "+experiment=tiny/pretrain/pretrain-tiny-e2e";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"model.num_hidden_layers=2147483648", "model.num_hidden_layers"},
      {"model.num_hidden_layers=9223372036854775807", "model.num_hidden_layers"},
      {"model.vocab_size=9223372036854775807", "model.vocab_size"},
      {"model.hidden_size=1000000000", "model.hidden_size"},
      {"training.seq_length=1099511627776", "training.seq_length"},
      {"model.rope_theta=.nan", "model.rope_theta"},
      {"model.rope_theta=-1", "model.rope_theta"},
      {"model.rms_norm_eps=0", "model.rms_norm_eps"},
      {"model.rms_norm_eps=.inf", "model.rms_norm_eps"},
      {"training.optimizer_outer.lr=.inf", "training.optimizer_outer.lr"},
      {"training.optimizer_outer.lr=1e38", "training.optimizer_outer.lr"},
      {"training.optimizer_inner.lr=.nan", "training.optimizer_inner.lr"},
      {"training.optimizer_outer.b2=1.5", "training.optimizer_outer.b2"},
      {"training.ilr_init=-0.5", "training.ilr_init"},
      {"training.model_seed=-1", "training.model_seed"},
      {"backend.num_threads=100000", "backend.num_threads"},
  };
  for (const auto& [word, key] : cases) {
    SCOPED_TRACE(word);
    expect_load_error({e2e, word}, {key, "got"});
  }
  // Parameter counts of the largest configurations the bounds admit do not overflow.
  Config big = load({e2e});
  big.model.vocab_size = big.model.output_size = 1 << 24;
  big.model.hidden_size = big.model.intermediate_size = 1 << 18;
  big.model.num_hidden_layers = 1 << 12;
  EXPECT_NO_THROW(validate_config(big));
}

TEST(ResolvedConfig, ParserMessagesQuotingInputStayOnOneLine) {
  // Found by fuzz_config_yaml: yaml-cpp quoted a line break of the input in its message.
  try {
    parse_resolved_config(std::string("training:\n  eval_batch_size: 8") + '\0' + "\nmodel:\n  name: tiny\n",
                          "config.yaml");
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("config.yaml"), std::string::npos) << e.what();
  }
}

TEST(ConfigFields, DocsListEveryParityAndDefaultOnlyField) {
  // docs/configuration.md holds the table that the registry's flags generate, verbatim.
  std::ifstream doc(TTT_SOURCE_DIR "/docs/configuration.md");
  const std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find(unused_fields_markdown()), std::string::npos)
      << "docs/configuration.md lacks the table of unused fields; it should hold:\n"
      << unused_fields_markdown();
}

TEST(ResolvedConfig, RoundTripGivesIdenticalYaml) {
  const fs::path file = fs::path(TTT_BINARY_DIR) / ("resolved-" + std::to_string(::getpid()) + ".yaml");
  const std::vector<std::vector<std::string>> runs = {
      {},
      {"+deploy=interactive", "+experiment=3b/extension/ext-3b-e2e-128K", "deploy_paths.data.books3=/x"},
      {"+experiment=tiny/pretrain/pretrain-tiny-e2e", "training.exp_folder=a b: 'c' #d",
       "training.tokenizer_name='null'", "training.exp_name=\\${not.an.interpolation}", "training.data_split=1e3",
       "training.spec_outer=['**', '[x]', 'y,z']", "model.rope_theta=123456.789", "training.resume_step=7",
       "backend.local_device_ids='0,1'", "+deploy_paths.data.weird=~/with space"},
  };
  for (const auto& words : runs) {
    SCOPED_TRACE(join(words, " "));
    const Config original = load(words);
    const std::string yaml = to_yaml(original);
    std::ofstream(file) << yaml;
    const Config reloaded = load_resolved_config(file.string());
    EXPECT_EQ(to_yaml(reloaded), yaml);
    EXPECT_EQ(reloaded.training.exp_folder, original.training.exp_folder);
    EXPECT_EQ(reloaded.training.exp_name, original.training.exp_name);
    EXPECT_EQ(reloaded.training.spec_outer, original.training.spec_outer);
    EXPECT_EQ(reloaded.training.tokenizer_name, original.training.tokenizer_name);
    EXPECT_EQ(reloaded.model.rope_theta, original.model.rope_theta);
    EXPECT_EQ(reloaded.deploy_paths.data, original.deploy_paths.data);
  }
  const Config tiny = load_resolved_config(file.string(), {"training.total_steps=7", "model.rope_theta=1e4"});
  EXPECT_EQ(tiny.training.exp_name, "${not.an.interpolation}");
  EXPECT_EQ(tiny.training.total_steps, 7);
  EXPECT_EQ(tiny.model.rope_theta, 1e4);
  expect_config_error([&] { load_resolved_config(file.string(), {"model=125m"}); }, {"model=125m"});
  expect_config_error([&] { load_resolved_config(file.string(), {"training.seq_length=1000"}); },
                      {"training.seq_length"});
  expect_config_error([&] { load_resolved_config((file.string() + ".absent")); }, {".absent"});
  fs::remove(file);
}

// A resolved config from before model.rope_precision existed ran with the float64 table; one
// that records the field keeps it; a freshly composed config takes the reference's fp32.
TEST(ResolvedConfig, RopePrecisionOfConfigsWrittenBeforeTheFieldIsFloat64) {
  const Config composed = load({"+experiment=tiny/pretrain/pretrain-tiny-e2e"});
  EXPECT_EQ(composed.model.rope_precision, RopePrecision::kFloat32);
  const std::string yaml = to_yaml(composed);
  const std::string line = "  rope_precision: fp32\n";
  ASSERT_NE(yaml.find(line), std::string::npos);
  std::string older = yaml;
  older.erase(older.find(line), line.size());
  EXPECT_EQ(parse_resolved_config(yaml, "now.yaml").model.rope_precision, RopePrecision::kFloat32);
  EXPECT_EQ(parse_resolved_config(older, "older.yaml").model.rope_precision, RopePrecision::kFloat64);
  EXPECT_EQ(parse_resolved_config(older, "older.yaml", {"model.rope_precision=fp32"}).model.rope_precision,
            RopePrecision::kFloat32);
}

TEST(ResolvedConfig, YamlListsEveryFieldWithMissingMarkers) {
  const std::string yaml = to_yaml(load({"+experiment=125m/extension/ext-125m-fa-32K"}));
  for (const std::string line :
       {"training:\n", "  dataset_name: books3\n", "  dataset_path: ???\n", "  resume_step: null\n",
        "  optimizer_outer:\n    optimizer_type: adamw\n", "  spec_inner: ['**']\n", "model:\n  name: 125m\n",
        "  rope_theta: 2000000.0\n", "backend:\n", "checkpoint:\n",
        "deploy_paths:\n  data:\n    gutenberg: ./data/gutenberg-byte\n", "  wandb_key: ???\n",
        "  remat_attention: ''\n"}) {
    EXPECT_NE(yaml.find(line), std::string::npos) << line;
  }
}

TEST(Strings, Helpers) {
  EXPECT_EQ(edit_distance("hiden_size", "hidden_size"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(split_top_level("a, 'b,c', [d,e]", ','), (std::vector<std::string>{"a", "'b,c'", "[d,e]"}));
  EXPECT_EQ(split("a..b", '.'), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(trim("  x y \n"), "x y");
  EXPECT_EQ(closest_matches("modle", {"model", "mode", "train"}, 2), (std::vector<std::string>{"mode", "model"}));
}

}  // namespace
}  // namespace ttt

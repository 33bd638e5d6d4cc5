// Checkpoint interop with the official implementation (train/official_checkpoint): the official
// code's own initial leaves (tests/golden/meta-swa) imported as our checkpoint load as the weights
// from_official_layout gives; exporting that checkpoint gives back the same leaves bitwise; an
// import never replaces a checkpoint, and a file of another configuration is refused by name.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "config/loader.h"
#include "model/layers.h"
#include "model/official_layout.h"
#include "support/test_util.h"
#include "train/checkpoint.h"
#include "train/official_checkpoint.h"
#include "util/safetensors.h"
#include "util/strings.h"

using namespace ttt;
using ttt::testing::expect_one_line_error;
namespace fs = std::filesystem;

namespace {

const fs::path kGolden = fs::path(TTT_SOURCE_DIR) / "tests" / "golden";

// The official code's initial leaves of a golden case, written as an official weights file.
std::map<std::string, torch::Tensor> official_leaves(const std::string& name, const fs::path& file) {
  std::map<std::string, torch::Tensor> leaves;
  std::vector<std::pair<std::string, torch::Tensor>> ordered;
  for (const auto& [key, t] : load_safetensors((kGolden / name / "official.safetensors").string()).tensors)
    if (starts_with(key, "init.")) {
      leaves[key.substr(5)] = t;
      ordered.emplace_back(key.substr(5), t);
    }
  save_safetensors(file.string(), ordered);
  return leaves;
}

}  // namespace

TEST(OfficialCheckpoint, ImportThenExportGivesBackTheOfficialLeaves) {
  const fs::path dir = ttt::testing::fresh_temp_dir("official_checkpoint_rt");
  const std::map<std::string, torch::Tensor> leaves = official_leaves("meta-swa", dir / "official.safetensors");
  Config config = load_resolved_config((kGolden / "meta-swa" / "config.yaml").string());
  config.checkpoint.checkpoint_dir = (dir / "run").string();

  const std::string step_dir = import_official_weights(config, (dir / "official.safetensors").string(), 5);
  EXPECT_EQ(step_dir, (dir / "run" / "5").string());
  EXPECT_FALSE(load_checkpoint_state(step_dir).has_optimizer_state);
  EXPECT_EQ(complete_checkpoint_steps((dir / "run").string()), std::vector<int64_t>{5});
  auto loaded = ModelWeights::zeros(config.model, torch::kFloat32, torch::kCPU);
  load_checkpoint_weights(step_dir, loaded);
  const auto expected = from_official_layout(config.model, leaves, torch::kFloat32, "golden");
  for (size_t i = 0; i < loaded.tensors().size(); ++i)
    EXPECT_TRUE(torch::equal(loaded.tensors()[i], expected.tensors()[i])) << loaded.layout()[i].name;

  export_official_weights(step_dir, (dir / "exported.safetensors").string());
  const SafetensorsFile exported = load_safetensors((dir / "exported.safetensors").string());
  EXPECT_EQ(exported.metadata.at("step"), "5");
  ASSERT_EQ(exported.tensors.size(), leaves.size());
  for (const auto& [name, t] : leaves) {
    ASSERT_TRUE(exported.tensors.count(name)) << name;
    EXPECT_TRUE(torch::equal(exported.tensors.at(name), t)) << name;
  }
  EXPECT_FALSE(fs::exists(dir / "exported.safetensors.partial"));
}

TEST(OfficialCheckpoint, ImportRefusesAnExistingStepAndAnotherConfiguration) {
  const fs::path dir = ttt::testing::fresh_temp_dir("official_checkpoint_refusals");
  official_leaves("meta-swa", dir / "official.safetensors");
  Config config = load_resolved_config((kGolden / "meta-swa" / "config.yaml").string());
  config.checkpoint.checkpoint_dir = (dir / "run").string();
  const std::string file = (dir / "official.safetensors").string();
  const std::string step_dir = import_official_weights(config, file, 0);
  const auto before = load_safetensors((fs::path(step_dir) / "model.safetensors").string()).tensors;

  // The same step again: refused before anything is written; the checkpoint there is untouched.
  expect_one_line_error<std::runtime_error>([&] { import_official_weights(config, file, 0); },
                                            {step_dir, "already exists"});
  const auto after = load_safetensors((fs::path(step_dir) / "model.safetensors").string()).tensors;
  for (const auto& [name, t] : before) EXPECT_TRUE(torch::equal(after.at(name), t)) << name;

  // The untied full-attention case needs an LM head the tied meta case has not.
  Config untied = load_resolved_config((kGolden / "pretrain-fa" / "config.yaml").string());
  untied.checkpoint.checkpoint_dir = (dir / "untied").string();
  expect_one_line_error<std::runtime_error>([&] { import_official_weights(untied, file, 0); },
                                            {file, "missing parameter language_model.lm_head.weight"});
  EXPECT_FALSE(fs::exists(dir / "untied" / "0"));
  expect_one_line_error<std::runtime_error>(
      [&] { import_official_weights(config, (dir / "absent.safetensors").string(), 1); }, {"absent.safetensors"});
  EXPECT_FALSE(fs::exists(dir / "run" / "1"));
}

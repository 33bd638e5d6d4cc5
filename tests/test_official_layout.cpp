// The official stacked layout (model/official_layout.h) on the leaves the official code itself
// wrote (tests/golden/meta-swa: 3 blocks, 2 of them suffix blocks with prime MLPs).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>

#include "config/loader.h"
#include "model/official_layout.h"
#include "util/safetensors.h"
#include "util/strings.h"

using namespace ttt;
namespace fs = std::filesystem;

// The layout mapping itself: our weights through the official layout and back are the same
// tensors, and a leaf of the wrong shape, a missing one or an extra one is refused by name.
TEST(OfficialLayout, RoundTripAndRefusals) {
  const fs::path dir = fs::path(TTT_SOURCE_DIR) / "tests" / "golden" / "meta-swa";
  const Config config = load_resolved_config((dir / "config.yaml").string());
  std::map<std::string, torch::Tensor> official;  // the official code's initial leaves
  for (const auto& [name, t] : load_safetensors((dir / "official.safetensors").string()).tensors)
    if (starts_with(name, "init.")) official[name.substr(5)] = t;
  const auto w = ModelWeights::initialize(config.model, 3);
  std::map<std::string, torch::Tensor> leaves;
  for (const auto& [name, t] : to_official_layout(config.model, w)) leaves[name] = t;
  EXPECT_EQ(leaves.size(), official.size());
  for (const auto& [name, t] : official) {
    ASSERT_TRUE(leaves.count(name)) << name;
    EXPECT_EQ(leaves[name].sizes(), t.sizes()) << name;
  }
  const auto back = from_official_layout(config.model, leaves, torch::kFloat32, "round trip");
  for (size_t i = 0; i < w.tensors().size(); ++i) EXPECT_TRUE(torch::equal(back.tensors()[i], w.tensors()[i]));

  auto expect_refused = [&](std::map<std::string, torch::Tensor> bad, const std::string& says) {
    try {
      from_official_layout(config.model, bad, torch::kFloat32, "bad.safetensors");
      ADD_FAILURE() << "accepted: " << says;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos) << e.what();
    }
  };
  const std::string wq = "language_model.model.h.blocks.seq_modeling_block.wq.weight";
  auto wrong_shape = leaves;
  wrong_shape[wq] = leaves[wq].slice(0, 0, 2);
  expect_refused(wrong_shape, wq + " has shape [2, 16, 16], the configuration needs [3, 16, 16]");
  auto missing = leaves;
  missing.erase("language_model.model.ln_f.weight");
  expect_refused(missing, "missing parameter language_model.model.ln_f.weight");
  auto extra = leaves;
  extra["language_model.lm_head.weight"] = torch::zeros({16, 64});
  expect_refused(extra, "parameter language_model.lm_head.weight is not in this configuration");
  auto not_finite = leaves;
  not_finite["language_model.model.ln_f.weight"] = torch::full({16}, std::nan(""));
  expect_refused(not_finite, "'language_model.model.ln_f.weight' holds non-finite values");
  auto integers = leaves;
  integers["language_model.model.ln_f.weight"] = torch::ones({16}, torch::kInt32);
  expect_refused(integers, "'language_model.model.ln_f.weight' is I32, not floating-point");
}

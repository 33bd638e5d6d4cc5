// Parameter counts of every official experiment against the reference model's definition,
// written out as a formula: tied embedding V*D; per block 4 D^2 (q, k, v, o) + 2 d (QK-norm
// scales) + 4 D (pre/post norms of attention and MLP) + 3 D I (SwiGLU); per suffix block of a
// prime model 3 D I + 2 D (prime MLP and its two norms); final norm D. Inner parameters are the
// prime MLPs' w1, w2, w3.
#include <gtest/gtest.h>

#include "config/loader.h"
#include "model/param_layout.h"

using namespace ttt;

namespace {

struct Expected {
  const char* experiment;
  int64_t L, D, H, I, S;
  bool prime;
};

int64_t formula_total(const Expected& e) {
  const int64_t V = 128256, d = e.D / e.H;
  int64_t n = V * e.D + e.L * (4 * e.D * e.D + 2 * d + 4 * e.D + 3 * e.D * e.I) + e.D;
  if (e.prime) n += e.S * (3 * e.D * e.I + 2 * e.D);
  return n;
}

const Expected kExperiments[] = {
    {"125m/pretrain/pretrain-125m-e2e", 12, 768, 12, 1664, 3, true},
    {"125m/pretrain/pretrain-125m-fa", 12, 768, 12, 2048, 0, false},
    {"125m/extension/ext-125m-e2e-32K", 12, 768, 12, 1664, 3, true},
    {"125m/extension/ext-125m-fa-32K", 12, 768, 12, 2048, 0, false},
    {"350m/pretrain/pretrain-350m-e2e", 24, 1024, 16, 2304, 6, true},
    {"350m/pretrain/pretrain-350m-fa", 24, 1024, 16, 2816, 0, false},
    {"350m/extension/ext-350m-e2e-32K", 24, 1024, 16, 2304, 6, true},
    {"350m/extension/ext-350m-fa-32K", 24, 1024, 16, 2816, 0, false},
    {"760m/pretrain/pretrain-760m-e2e", 24, 1536, 16, 3328, 6, true},
    {"760m/pretrain/pretrain-760m-fa", 24, 1536, 16, 4096, 0, false},
    {"760m/extension/ext-760m-e2e-32K", 24, 1536, 16, 3328, 6, true},
    {"760m/extension/ext-760m-fa-32K", 24, 1536, 16, 4096, 0, false},
    {"1b/pretrain/pretrain-1b-e2e", 24, 2048, 32, 4352, 6, true},
    {"1b/pretrain/pretrain-1b-fa", 24, 2048, 32, 5376, 0, false},
    {"1b/extension/ext-1b-e2e-32K", 24, 2048, 32, 4352, 6, true},
    {"1b/extension/ext-1b-fa-32K", 24, 2048, 32, 5376, 0, false},
    {"3b/pretrain/pretrain-3b-e2e", 32, 2560, 32, 5632, 8, true},
    {"3b/pretrain/pretrain-3b-fa", 32, 2560, 32, 6912, 0, false},
    {"3b/extension/ext-3b-e2e-32K", 32, 2560, 32, 5632, 8, true},
    {"3b/extension/ext-3b-fa-32K", 32, 2560, 32, 6912, 0, false},
    {"3b/extension/ext-3b-e2e-128K", 32, 2560, 32, 5632, 8, true},
    {"3b/extension/ext-3b-fa-128K", 32, 2560, 32, 6912, 0, false},
};

}  // namespace

TEST(ParamLayout, EveryOfficialExperimentMatchesTheReferenceFormula) {
  LoadOptions options;
  options.config_dir = TTT_SOURCE_DIR "/configs";
  for (const auto& e : kExperiments) {
    const Config c = load_config({std::string("+experiment=") + e.experiment}, options);
    const ParamCounts counts = count_params(c);
    EXPECT_EQ(counts.total, formula_total(e)) << e.experiment;
    EXPECT_EQ(counts.embedding, 128256 * e.D) << e.experiment;
    EXPECT_EQ(counts.non_embedding, counts.total - 128256 * e.D) << e.experiment;
    EXPECT_EQ(counts.inner, e.prime ? e.S * 3 * e.D * e.I : 0) << e.experiment;
    EXPECT_EQ(counts.outer, counts.total) << e.experiment;
  }
}

TEST(ParamLayout, E2eKeepsTheBaselineSizeWithinTwoPercent) {
  // The narrower MLPs pay for the prime MLPs (the official rule), so E2E and FA models of a
  // size have nearly equal parameter counts.
  for (size_t i = 0; i + 1 < std::size(kExperiments); i += 2) {
    const double e2e = formula_total(kExperiments[i]), fa = formula_total(kExperiments[i + 1]);
    EXPECT_NEAR(e2e / fa, 1.0, 0.02) << kExperiments[i].experiment;
  }
}

// The TTT-layer experiments (ttt-lm-jax's scripts) against ttt-lm-jax's model definition, written
// out as a formula (docs/ttt-layers-official.md, section 2.3): tied embedding V*D (V = 32000) and a
// final norm D; per block the seq/ffn norms 2D and SwiGLU 3DI, and
//  - the Transformer baseline: q, k, v, o 4D^2 (no q/k norms, no post-norms);
//  - a TTT layer: projections 4D^2 (q, k, v, o; the Mamba backbone has the gate g instead of k),
//    the learnable lr gate H*D + H, the token scales b, the per-head LayerNorm 2D, the post-norm
//    2D, the inner model (Linear: D*d + D; MLP: 8 D*d + 5D); the Mamba backbone's q/k convolutions
//    2 (K + 1) D; the pre-convolution (K + 2) D.
TEST(ParamLayout, TttLayerExperimentsMatchTheOfficialFormula) {
  struct Size {
    const char* script;
    int64_t L, D, H, I;
  };
  const Size sizes[] = {{"125m", 12, 768, 12, 2048},
                        {"350m", 24, 1024, 16, 2736},
                        {"760m", 24, 1536, 16, 4096},
                        {"1.3b", 24, 2048, 32, 5504}};
  LoadOptions options;
  options.config_dir = TTT_SOURCE_DIR "/configs";
  const int64_t V = 32000, b = 16, K = 4;
  for (const auto& z : sizes) {
    const int64_t D = z.D, d = D / z.H;
    const int64_t common = 2 * D + 3 * D * z.I + 4 * D * D;
    const int64_t ttt = z.H * D + z.H + b + 2 * D + 2 * D + 2 * (K + 1) * D + (K + 2) * D;
    const std::vector<std::pair<std::string, int64_t>> blocks = {{"transformer", common},
                                                                 {"ttt_linear", common + ttt + D * d + D},
                                                                 {"ttt_mlp", common + ttt + 8 * D * d + 5 * D}};
    for (const auto& [block, per_block] : blocks) {
      const std::string experiment = "ttt-layers/" + block + "/" + z.script;
      const Config c = load_config({"+experiment=" + experiment}, options);
      const ParamCounts counts = count_params(c);
      EXPECT_EQ(counts.total, V * D + D + z.L * per_block) << experiment;
      EXPECT_EQ(counts.embedding, V * D) << experiment;
      EXPECT_EQ(counts.outer, counts.total) << experiment;
    }
  }
}

TEST(ParamLayout, SpecMatchingNothingIsAnError) {
  LoadOptions options;
  options.config_dir = TTT_SOURCE_DIR "/configs";
  const Config c = load_config({"+experiment=125m/pretrain/pretrain-125m-e2e",
                                "training.spec_inner=[language_model.**.suffix_blocks.nothing.**]"},
                               options);
  try {
    count_params(c);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("training.spec_inner"), std::string::npos);
  }
}

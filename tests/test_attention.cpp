// Attention and the model's forward forms: the suffix blocks read chunk by chunk through KV
// caches equal full-sequence sliding-window attention, SWA equals full attention when the window
// covers the sequence, and the window mask hides exactly what it should.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "model/layers.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "support/tiny_model.h"
#include "ttt/inner_loop.h"
#include "util/torch_compat.h"

using namespace ttt;
using ttt::testing::random_batch;
using ttt::testing::tiny_model_config;

namespace {

// Logits from the prefix run once plus the suffix blocks chunk by chunk with KV caches, no
// weight change between chunks.
torch::Tensor chunked_logits(const ModelConfig& cfg, const ModelWeights& w, const torch::Tensor& ids) {
  TttOptions ttt;
  ttt.enabled = true;
  ttt.inner = select_inner_params(cfg, {"language_model.**.suffix_blocks.feed_forward_prime.**"});
  auto prefix = prefix_forward(cfg, w, ids);
  auto state = init_fast_state(cfg, w, ttt, ids.size(0), /*through_outer=*/false);
  std::vector<torch::Tensor> out;
  const int64_t b = cfg.mini_batch_size;
  for (int64_t c = 0; c < ids.size(1) / b; ++c)
    out.push_back(lm_head(cfg, w, suffix_forward(cfg, w, ttt, state, prefix.slice(1, c * b, (c + 1) * b))));
  return torch::cat(out, 1);
}

}  // namespace

TEST(Attention, ChunkedSuffixSwaEqualsFullSequenceSwa) {
  torch::NoGradGuard no_grad;
  for (int64_t window : {4, 8, 12}) {
    for (int64_t b : {2, 4}) {
      auto cfg = tiny_model_config();
      cfg.sliding_window_size = window;
      cfg.mini_batch_size = b;
      auto w = ModelWeights::initialize(cfg, 3);
      auto batch = random_batch(2, 24, cfg.vocab_size, 1);
      auto full = full_sequence_logits(cfg, w, batch.input_ids);
      auto chunked = chunked_logits(cfg, w, batch.input_ids);
      EXPECT_TRUE(torch::allclose(full, chunked, 1e-4, 1e-5))
          << "W=" << window << " b=" << b << " max diff " << (full - chunked).abs().max().item<double>();
    }
  }
}

TEST(Attention, ChunkedEqualsFullAcrossManyQueryBlocks) {
  // Long enough that the full-sequence path runs several query blocks (block = max(W/4, 64)).
  torch::NoGradGuard no_grad;
  auto cfg = tiny_model_config();
  cfg.sliding_window_size = 300;
  cfg.mini_batch_size = 50;
  auto w = ModelWeights::initialize(cfg, 3);
  auto ids = random_batch(1, 400, cfg.vocab_size, 8).input_ids;
  auto full = full_sequence_logits(cfg, w, ids);
  auto chunked = chunked_logits(cfg, w, ids);
  EXPECT_TRUE(torch::allclose(full, chunked, 1e-4, 1e-5)) << (full - chunked).abs().max().item<double>();
}

TEST(Attention, ChunkedDiffersWhenWindowIsWrong) {
  // The equivalence above must be able to fail: a cache that forgets the window changes logits.
  torch::NoGradGuard no_grad;
  auto cfg = tiny_model_config();
  auto w = ModelWeights::initialize(cfg, 3);
  auto batch = random_batch(1, 24, cfg.vocab_size, 1);
  auto full = full_sequence_logits(cfg, w, batch.input_ids);
  auto narrow = cfg;
  narrow.sliding_window_size = 4;
  auto chunked = chunked_logits(narrow, w, batch.input_ids);
  EXPECT_FALSE(torch::allclose(full, chunked, 1e-4, 1e-5));
}

TEST(Attention, SwaEqualsFullAttentionWhenWindowCoversSequence) {
  torch::NoGradGuard no_grad;
  auto swa = tiny_model_config();
  swa.prime = false;
  swa.suffix_len = 0;
  swa.sliding_window_size = 16;
  swa.mini_batch_size = 16;
  auto fa = swa;
  fa.seq_modeling_block = SeqModelingBlock::kSelfAttention;
  auto w = ModelWeights::initialize(swa, 5);
  auto ids = random_batch(2, 16, swa.vocab_size, 2).input_ids;
  auto a = full_sequence_logits(swa, w, ids);
  auto b = full_sequence_logits(fa, w, ids);
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6));
  // And a window shorter than the sequence does change the result.
  swa.sliding_window_size = 8;
  EXPECT_FALSE(torch::allclose(full_sequence_logits(swa, w, ids), b, 1e-4, 1e-5));
}

TEST(Attention, SwaEqualsFullAttentionAcrossQueryBlocks) {
  // 1100 tokens: full attention runs two query blocks of up to 1024, SWA (W = 1100) five of 275.
  torch::NoGradGuard no_grad;
  auto swa = tiny_model_config();
  swa.prime = false;
  swa.suffix_len = 0;
  swa.num_hidden_layers = 1;
  swa.sliding_window_size = 1100;
  swa.mini_batch_size = 1100;
  auto fa = swa;
  fa.seq_modeling_block = SeqModelingBlock::kSelfAttention;
  auto w = ModelWeights::initialize(swa, 5);
  auto ids = random_batch(1, 1100, swa.vocab_size, 2).input_ids;
  EXPECT_TRUE(torch::allclose(full_sequence_logits(swa, w, ids), full_sequence_logits(fa, w, ids), 1e-4, 1e-5));
}

TEST(Attention, SlidingWindowMaskOnlySeesTheWindow) {
  // Changing a token more than W positions back leaves a position's logits unchanged in a model
  // made of full-sequence SWA blocks with one layer, and changes them within the window.
  torch::NoGradGuard no_grad;
  auto cfg = tiny_model_config();
  cfg.prime = false;
  cfg.suffix_len = 0;
  cfg.num_hidden_layers = 1;
  cfg.sliding_window_size = 4;
  cfg.mini_batch_size = 16;
  auto w = ModelWeights::initialize(cfg, 7);
  auto ids = random_batch(1, 16, cfg.vocab_size, 3).input_ids;
  auto changed = ids.clone();
  changed[0][5] = (ids[0][5].item<int64_t>() % 10) + 1;
  auto a = full_sequence_logits(cfg, w, ids), b = full_sequence_logits(cfg, w, changed);
  EXPECT_TRUE(torch::allclose(a.select(1, 9), b.select(1, 9)));   // 9 - 5 >= W
  EXPECT_FALSE(torch::allclose(a.select(1, 8), b.select(1, 8)));  // 8 - 5 < W
}

namespace {

// Deterministic algorithms turn the fused attention kernel off (util/torch_compat.h): the same
// call then runs the composite math, which the fused kernel must reproduce.
struct MathAttentionOnly {
  bool before = at::globalContext().deterministicAlgorithms();
  MathAttentionOnly() { at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true); }
  ~MathAttentionOnly() { at::globalContext().setDeterministicAlgorithms(before, /*warn_only=*/true); }
};

// The output and (with `gradient`) the gradient of its weighted sum with respect to x, both
// kernels.
void expect_kernels_agree(const std::string& what, const std::function<torch::Tensor(const torch::Tensor&)>& attend,
                          const torch::Tensor& x, bool gradient = true) {
  auto run = [&] {
    auto leaf = x.detach().clone().requires_grad_(gradient);
    auto y = attend(leaf);
    if (!gradient) return std::make_pair(y.detach(), torch::zeros({1}));
    auto weights = torch::linspace(-1, 1, y.numel(), y.options()).view(y.sizes());
    (y * weights).sum().backward();
    return std::make_pair(y.detach(), leaf.grad());
  };
  const auto fused = run();
  std::pair<torch::Tensor, torch::Tensor> math;
  {
    MathAttentionOnly only_math;
    math = run();
  }
  EXPECT_TRUE(torch::allclose(fused.first, math.first, 1e-5, 1e-6))
      << what << ": output max diff " << (fused.first - math.first).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(fused.second, math.second, 1e-4, 1e-6))
      << what << ": gradient max diff " << (fused.second - math.second).abs().max().item<double>();
}

}  // namespace

TEST(Attention, FusedKernelEqualsTheMathKernel) {
  if (!fused_attention_enabled())
    GTEST_SKIP() << "LibTorch " << torch_build_description() << " has no scaled_dot_product_attention";
  auto cfg = tiny_model_config();
  const auto w = ModelWeights::initialize(cfg, 3).block(0).attn;
  torch::manual_seed(4);
  const auto x = torch::randn({2, 100, cfg.hidden_size});
  expect_kernels_agree(
      "full attention", [&](const torch::Tensor& h) { return attention_full_sequence(cfg, w, h, 0); }, x);
  expect_kernels_agree(
      "aligned segments", [&](const torch::Tensor& h) { return attention_full_sequence(cfg, w, h, 0, 20); }, x);
  expect_kernels_agree(
      "segments not dividing T", [&](const torch::Tensor& h) { return attention_full_sequence(cfg, w, h, 0, 16); }, x);
  expect_kernels_agree(
      "sliding window", [&](const torch::Tensor& h) { return attention_full_sequence(cfg, w, h, 12); }, x);
  expect_kernels_agree(
      "window steps",
      [&](const torch::Tensor& h) {
        auto cache = empty_kv_cache(cfg, 2, torch::kFloat32, torch::kCPU);
        auto first = attention_step(cfg, w, h.slice(1, 0, 5), cache, 0, AttentionKernel::kFused);
        return torch::cat({first, attention_step(cfg, w, h.slice(1, 5, 11), cache, 5, AttentionKernel::kFused)}, 1);
      },
      x);
  // Decoding full attention never trains (its cache is written in place): outputs only.
  expect_kernels_agree(
      "growing cache",
      [&](const torch::Tensor& h) {
        auto cache = empty_growing_kv_cache(cfg, 2, torch::kFloat32, torch::kCPU, 4);
        auto prefill = attention_step_growing(cfg, w, h.slice(1, 0, 7), cache);
        return torch::cat({prefill, attention_step_growing(cfg, w, h.slice(1, 7, 8), cache)}, 1);
      },
      x, /*gradient=*/false);
}

// Decoding's window cache against the inner loop's attention_step, in float64: reads of 1 to 5
// tokens (never across a multiple of the period, as the decoder reads) through several re-basings,
// for windows narrower than, equal to and wider than the period. A cache rebuilt from its last W
// keys at any position (a saved state) continues bitwise as the one it was taken from.
TEST(Attention, WindowCacheEqualsAttentionStepAcrossPeriodsAndRebuildsBitwise) {
  torch::NoGradGuard no_grad;
  auto cfg = tiny_model_config();
  // Float64 angles: with float32 ones (the reference's), rotations at other local positions differ
  // by the float32 rounding of the angles, which is not what this test is about.
  cfg.rope_precision = RopePrecision::kFloat64;
  const auto w = ModelWeights::initialize(cfg, 3).to(torch::kFloat64).block(0).attn;
  torch::manual_seed(5);
  const int64_t B = 2, T = 60;
  const auto x = torch::randn({B, T, cfg.hidden_size}, torch::kFloat64);
  const std::vector<int64_t> sizes{1, 3, 2, 5, 1, 1, 4};
  for (const int64_t window : {1, 3, 8, 16})
    for (const int64_t period : {1, 4, 8}) {
      cfg.sliding_window_size = window;
      const auto rope = attention_rope_table(cfg, 0, window + period, torch::kFloat64, torch::kCPU);
      const auto zeros = empty_kv_cache(cfg, B, torch::kFloat64, torch::kCPU);
      KvCache reference = zeros;
      WindowCache cache = window_cache_at(zeros, 0, period, rope);
      const std::string what = "W " + std::to_string(window) + " S " + std::to_string(period);
      for (int64_t at = 0, i = 0; at < T; ++i) {
        const int64_t n = std::min({sizes[i % sizes.size()], T - at, (at / period + 1) * period - at});
        const auto piece = x.slice(1, at, at + n);
        const auto expected = attention_step(cfg, w, piece, reference, at, AttentionKernel::kMath);
        if (i % 5 == 2) {
          // Continue from a copy rebuilt from the last W keys; the original must agree bitwise.
          WindowCache unbroken = cache;
          WindowCache rebuilt = window_cache_at(window_cache_view(cache), at, period, rope);
          const auto a = attention_step_window(cfg, w, piece, unbroken, at, rope);
          const auto b = attention_step_window(cfg, w, piece, rebuilt, at, rope);
          ASSERT_TRUE(torch::equal(a, b)) << what << " at " << at << ": rebuilt cache differs";
          cache = rebuilt;
          EXPECT_TRUE(torch::allclose(b, expected, 1e-12, 1e-12)) << what << " at " << at;
        } else {
          const auto got = attention_step_window(cfg, w, piece, cache, at, rope);
          EXPECT_TRUE(torch::allclose(got, expected, 1e-12, 1e-12))
              << what << " at " << at << " n " << n << ": max diff " << (got - expected).abs().max().item<double>();
        }
        // The cache's last W positions are the inner loop's cache.
        const auto view = window_cache_view(cache);
        EXPECT_TRUE(torch::equal(view.k, reference.k) && torch::equal(view.v, reference.v)) << what << " at " << at;
        at += n;
      }
    }
}

// One decoded token through matrix-vector products equals the batched kernel, float32 and float64.
TEST(Attention, SingleQueryAttentionEqualsMaskedAttention) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(6);
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    const auto q = torch::randn({2, 1, 3, 16}, dtype);
    const auto k = torch::randn({2, 3, 40, 16}, dtype), v = torch::randn({2, 3, 40, 16}, dtype);
    const auto got = single_query_attention(q, k, v);
    const auto expected =
        masked_attention(q, k.transpose(1, 2), v.transpose(1, 2), torch::Tensor(), AttentionKernel::kMath);
    const double tol = dtype == torch::kFloat64 ? 1e-13 : 1e-5;
    EXPECT_TRUE(torch::allclose(got, expected, tol, tol)) << (got - expected).abs().max().item<double>();
  }
}

// model.rope_precision: fp32 computes the angles as the reference does (float32 frequency,
// float32 position, float32 product; the frequency's power rounded from float64, layers.cpp), fp64
// in float64. Both against plain C++ arithmetic, at the first positions and at the end of a 128K
// context, where the float32 angle has drifted.
TEST(Rope, TablesFollowTheirPrecisionAndFloat32DriftsAtLongContext) {
  const int64_t d = 64, far = 131072 - 64;
  const double theta = 500000.0;
  for (const int64_t begin : {int64_t{0}, far}) {
    const auto t32 = rope_table(d, theta, begin, begin + 64, torch::kFloat64, torch::kCPU, RopePrecision::kFloat32);
    const auto t64 = rope_table(d, theta, begin, begin + 64, torch::kFloat64, torch::kCPU, RopePrecision::kFloat64);
    double worst32 = 0, worst64 = 0, drift = 0;
    for (int64_t p = begin; p < begin + 64; ++p) {
      for (int64_t i = 0; i < d / 2; ++i) {
        const float exponent = static_cast<float>(2 * i) / static_cast<float>(d);
        const float inv32 = 1.0f / static_cast<float>(std::pow(theta, static_cast<double>(exponent)));
        const float angle32 = static_cast<float>(p) * inv32;
        const double angle64 = static_cast<double>(p) * std::pow(theta, -static_cast<double>(2 * i) / d);
        const double c32 = t32.cos_pairs[p - begin][2 * i].item<double>(),
                     c64 = t64.cos_pairs[p - begin][2 * i].item<double>();
        // The sines' signs: -sin at a pair's first element, +sin at its second (a rotation by +angle).
        const double s64 = t64.sin_pairs[p - begin][2 * i + 1].item<double>();
        worst64 = std::max(worst64, std::abs(s64 - std::sin(angle64)));
        worst64 = std::max(worst64, std::abs(t64.sin_pairs[p - begin][2 * i].item<double>() + s64));
        worst32 = std::max(worst32, std::abs(c32 - std::cos(angle32)));
        worst64 = std::max(worst64, std::abs(c64 - std::cos(angle64)));
        drift = std::max(drift, std::abs(c32 - c64));
      }
    }
    SCOPED_TRACE("positions from " + std::to_string(begin));
    EXPECT_LT(worst32, 1e-6);   // float32 cos of the float32 angle
    EXPECT_LT(worst64, 1e-12);  // float64 throughout
    if (begin == far)
      EXPECT_GT(drift, 1e-3);  // the reference's table is not the exact one out there
    else
      EXPECT_LT(drift, 1e-4);
  }
}

// The rotation is the pairwise formula (re cos - im sin, re sin + im cos) to the bit, in float32,
// bfloat16 (rotated in float32) and float64, and so are its gradients and gradients of gradients,
// in the setting of a model: x is a norm's output (its weight's gradient is a reduction, which
// depends on the layout of the gradient it reduces), x has another use beside (a window's keys
// feed the next chunk), and the incoming gradient is transposed (as attention's backward hands it
// over). Training runs computed with the pairwise form stay bitwise what they were.
TEST(Rope, RotationAndItsGradientsAreBitwiseThePairwiseFormula) {
  const int64_t B = 2, T = 7, H = 3, d = 16, first = 5;
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat64}) {
    SCOPED_TRACE(c10::toString(dtype));
    const auto acc = accumulation_dtype(dtype);
    const auto table = rope_table(d, 10000.0, 3, 20, acc, torch::kCPU, RopePrecision::kFloat32);
    // The table's layout: each pair's cos twice, its sin as (-sin, +sin).
    const auto cos = table.cos_pairs.slice(0, first - 3, first - 3 + T).view({1, T, 1, d / 2, 2});
    const auto sin = table.sin_pairs.slice(0, first - 3, first - 3 + T).view({1, T, 1, d / 2, 2});
    EXPECT_TRUE(torch::equal(cos.select(-1, 0), cos.select(-1, 1)));
    EXPECT_TRUE(torch::equal(sin.select(-1, 0), -sin.select(-1, 1)));
    auto pairwise = [&](const torch::Tensor& x) {
      const auto pairs = x.to(acc).view({B, T, H, d / 2, 2});
      const auto re = pairs.select(-1, 0), im = pairs.select(-1, 1);
      const auto c = cos.select(-1, 0), s = sin.select(-1, 1);
      return torch::stack({re * c - im * s, re * s + im * c}, -1).view({B, T, H, d}).to(dtype);
    };

    torch::manual_seed(11);
    auto random = [&](std::vector<int64_t> sizes) { return torch::randn(sizes, torch::kFloat64).to(dtype); };
    const auto base = random({B, T, H, d}), weight0 = random({d}), other0 = random({B, T, H, d});
    // [B, H, T, d] transposed to [B, T, H, d]: a non-contiguous incoming gradient.
    const auto upstream0 = random({B, H, T, d}), probe = random({d});
    struct Result {
      torch::Tensor rotated, grads, grads_of_grads;
    };
    auto run = [&](const std::function<torch::Tensor(const torch::Tensor&)>& rope) {
      const auto weight = weight0.clone().requires_grad_(), other = other0.clone().requires_grad_();
      const auto upstream = upstream0.clone().requires_grad_();
      const auto x = base * weight;  // a norm's output
      const auto rotated = rope(x);
      const auto loss = (rotated * upstream.transpose(1, 2)).sum() + (x * other).sum();
      const auto first_order =
          torch::autograd::grad({loss}, {weight, other}, {}, /*retain_graph=*/true, /*create_graph=*/true);
      const auto second = torch::autograd::grad({(first_order[0] * probe).sum()}, {upstream, other});
      return Result{rotated.detach(), torch::cat({first_order[0].flatten(), first_order[1].flatten()}).detach(),
                    torch::cat({second[0].flatten(), second[1].flatten()})};
    };
    const auto ours = run([&](const torch::Tensor& x) { return apply_rope(x, table, first); });
    const auto expected = run(pairwise);
    EXPECT_TRUE(torch::equal(ours.rotated, expected.rotated));
    EXPECT_TRUE(torch::equal(ours.grads, expected.grads));
    EXPECT_TRUE(torch::equal(ours.grads_of_grads, expected.grads_of_grads));
    EXPECT_EQ(ours.rotated.scalar_type(), dtype);
  }
}

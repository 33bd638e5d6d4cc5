#include "infer/sampler.h"

#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace ttt {

namespace {

template <typename T>
void require(bool ok, const std::string& option, const std::string& range, T value) {
  if (ok) return;
  std::ostringstream message;
  message << option << " must be " << range << ", got " << value;
  throw std::invalid_argument(message.str());
}

}  // namespace

void check_sampling_options(const SamplingOptions& o) {
  require(o.temperature >= 0, "--temperature", ">= 0", o.temperature);
  require(o.top_k >= 0, "--top-k", ">= 0", o.top_k);
  require(o.top_p > 0 && o.top_p <= 1, "--top-p", "in (0, 1]", o.top_p);
  require(o.repetition_penalty > 0, "--repetition-penalty", "> 0", o.repetition_penalty);
}

torch::Tensor apply_repetition_penalty(const torch::Tensor& logits, const torch::Tensor& seen, double penalty) {
  if (penalty == 1.0 || !seen.defined()) return logits;
  const int64_t V = std::min(logits.size(0), seen.size(0));
  auto out = logits.clone();
  auto part = out.slice(0, 0, V);
  auto penalised = torch::where(part > 0, part / penalty, part * penalty);
  part.copy_(torch::where(seen.slice(0, 0, V).to(logits.device()), penalised, part));
  return out;
}

torch::Tensor sampling_distribution(const torch::Tensor& logits, const SamplingOptions& o) {
  // Float64 on the CPU: the draw below must not depend on the device's reduction order.
  auto scaled = logits.detach().to(torch::kCPU, torch::kFloat64) / std::max(o.temperature, 1e-12);
  const int64_t V = scaled.size(0);
  if (o.top_k > 0 && o.top_k < V) {
    const double kth = std::get<0>(scaled.topk(o.top_k)).min().item<double>();
    scaled = scaled.masked_fill(scaled < kth, -std::numeric_limits<double>::infinity());
  }
  auto probs = torch::softmax(scaled, 0);
  if (o.top_p < 1.0) {
    auto [sorted, order] = probs.sort(0, /*descending=*/true);
    // Keep a token while the mass of the more likely ones is still below p (the first always).
    auto mass_before = sorted.cumsum(0) - sorted;
    auto keep_sorted = mass_before < o.top_p;
    auto keep = torch::zeros_like(keep_sorted).scatter(0, order, keep_sorted);
    probs = probs * keep.to(torch::kFloat64);
    probs = probs / probs.sum();
  }
  return probs;
}

int64_t sample_next_token(const torch::Tensor& logits, const torch::Tensor& seen, const SamplingOptions& o,
                          std::mt19937_64& rng) {
  // -inf is a token ruled out; NaN or +inf mean the model or its state diverged.
  if ((torch::isnan(logits) | torch::isposinf(logits)).any().item<bool>())
    throw std::runtime_error("the next-token logits hold NaN or +inf: the model or its decoding state diverged");
  auto penalised = apply_repetition_penalty(logits, seen, o.repetition_penalty);
  if (o.temperature == 0) return penalised.argmax().item<int64_t>();
  auto probs = sampling_distribution(penalised, o).contiguous();
  // A uniform draw in [0, 1) from 53 random bits: the same on every standard library, unlike
  // std::uniform_real_distribution.
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  const double* p = probs.data_ptr<double>();
  const int64_t V = probs.size(0);
  double total = 0;
  for (int64_t i = 0; i < V; ++i) total += p[i];
  double cumulative = 0;
  int64_t last_nonzero = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (p[i] <= 0) continue;
    last_nonzero = i;
    cumulative += p[i];
    if (u * total < cumulative) return i;
  }
  return last_nonzero;  // rounding at the very top of the range
}

}  // namespace ttt

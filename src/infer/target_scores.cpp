#include "infer/target_scores.h"

#include <algorithm>

namespace ttt {

torch::Tensor prompt_ids(const std::vector<int64_t>& ids, int64_t begin, int64_t end, torch::Device device) {
  return torch::tensor(std::vector<int64_t>(ids.begin() + begin, ids.begin() + end), torch::kInt64)
      .view({1, -1})
      .to(device);
}

int64_t TargetScores::correct() const { return std::count(correct_at.begin(), correct_at.end(), true); }

TargetScores score_targets(const torch::Tensor& logits, const torch::Tensor& targets) {
  const auto predicting = logits.to(torch::kFloat32);
  const auto nll = -torch::log_softmax(predicting, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  // float32 holds every bf16 / fp16 value exactly, so the argmax is that of the logits as given.
  const auto hits = predicting.argmax(-1).eq(targets).view({-1}).to(torch::kCPU);
  TargetScores scores;
  scores.nll = nll.to(torch::kFloat64).sum().item<double>();
  for (int64_t i = 0; i < hits.size(0); ++i) scores.correct_at.push_back(hits[i].item<bool>());
  return scores;
}

}  // namespace ttt

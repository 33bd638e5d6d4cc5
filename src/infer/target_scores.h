// How the prompt tasks (the needle suite, the recall task) score what a model predicts: token ids
// of a prompt as the decoder reads them, and the summed NLL and argmax hits of target tokens from
// the logits that predict them.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace ttt {

// ids[begin, end) as a [1, end - begin] int64 tensor on `device`.
torch::Tensor prompt_ids(const std::vector<int64_t>& ids, int64_t begin, int64_t end, torch::Device device);

struct TargetScores {
  double nll = 0;                // summed over the targets (nats), accumulated in float64
  std::vector<bool> correct_at;  // per target, in order: whether it was the most likely token
  int64_t correct() const;       // how many were
};

// logits [1, n, V] (any float dtype; read in float32) predicting targets [1, n].
TargetScores score_targets(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace ttt

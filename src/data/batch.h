// A batch of training/evaluation sequences as the model consumes it.
#pragma once

#include <torch/torch.h>

namespace ttt {

struct Batch {
  torch::Tensor input_ids;  // [B, T] int64
  torch::Tensor targets;    // [B, T] int64 (input shifted by one)
  torch::Tensor loss_mask;  // [B, T] float, 1 where the target counts (target != BOS)

  Batch to(torch::Device device) const { return Batch{input_ids.to(device), targets.to(device), loss_mask.to(device)}; }
};

}  // namespace ttt

// A batch of training/evaluation sequences as the model consumes it.
#pragma once

#include <torch/torch.h>

namespace ttt {

struct Batch {
  torch::Tensor input_ids;  // [B, T] int64
  torch::Tensor targets;    // [B, T] int64 (input shifted by one)
  torch::Tensor loss_mask;  // [B, T] float, 1 where the target counts (target != BOS)

  // To a GPU through page-locked memory, so the copy is queued behind the device's work instead
  // of waiting for it (a plain copy from pageable memory synchronises the stream).
  Batch to(torch::Device device) const {
    auto move = [&](const torch::Tensor& t) {
      return device.is_cuda() ? t.pin_memory().to(device, /*non_blocking=*/true) : t.to(device);
    };
    return Batch{move(input_ids), move(targets), move(loss_mask)};
  }
};

}  // namespace ttt

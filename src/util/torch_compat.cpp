#include "util/torch_compat.h"

#include <stdexcept>

#ifdef TTT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace ttt {

std::string torch_build_description() {
  return std::string(TORCH_VERSION) + (torch::cuda::is_available() ? " (CUDA)" : " (CPU)");
}

bool fused_attention_enabled() { return kHasFusedAttention && !at::globalContext().deterministicAlgorithms(); }

torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& mask, bool causal) {
#if TTT_TORCH_HAS_SDPA
  // Both calls leave the optional's type unnamed: c10::optional in 2.0-2.3, std::optional after.
  if (mask.defined()) return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, causal);
  return at::scaled_dot_product_attention(q, k, v, {}, /*dropout_p=*/0.0, causal);
#else
  (void)q, (void)k, (void)v, (void)mask, (void)causal;
  throw std::logic_error("fused_attention needs LibTorch 2.0 or later (this is " TORCH_VERSION ")");
#endif
}

int64_t device_peak_memory(torch::Device device) {
#ifdef TTT_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[0].peak;  // [0]: the aggregate over pool kinds
  }
#endif
  (void)device;
  return -1;
}

void reset_device_peak_memory(torch::Device device) {
#ifdef TTT_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
  (void)device;
}

void synchronize(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

}  // namespace ttt

// What differs between the LibTorch versions this code builds against, in one place: Debian's
// 1.13 CPU build (CI, laptops) and PyTorch 2.x's, with CUDA, on GPU machines. Everything else in
// the code is written once against the API both share and asks here for the rest.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <sstream>
#include <string>
#include <type_traits>

#if TORCH_VERSION_MAJOR >= 2
#define TTT_TORCH_HAS_SDPA 1
#else
#define TTT_TORCH_HAS_SDPA 0
#endif

// c10d's collectives live on c10d::ProcessGroup in 1.x and on c10d::Backend from 2.0.
#define TTT_C10D_HAS_BACKEND (TORCH_VERSION_MAJOR >= 2)

namespace ttt {

// c10d's TCPStore serves through libuv by default from 2.4; a build without libuv (Debian's)
// refuses that, and the store is then opened again with the classic server. Options without the
// setting (before 2.4) are left as they are.
template <class StoreOptions>
auto use_classic_store_server(StoreOptions& options, int) -> decltype(options.useLibUV = false, void()) {
  options.useLibUV = false;
}
template <class StoreOptions>
void use_classic_store_server(StoreOptions&, long) {}

// "2.6.0 (CUDA)" / "1.13.0 (CPU)": the LibTorch this binary was built against.
std::string torch_build_description();

// Whether this LibTorch has scaled_dot_product_attention (2.0 and later): flash and
// memory-efficient kernels on CUDA, fused kernels on the CPU.
constexpr bool kHasFusedAttention = TTT_TORCH_HAS_SDPA != 0;

// Whether attention may take the fused kernel: this LibTorch has one and the process did not ask
// for deterministic algorithms (backend.deterministic).
bool fused_attention_enabled();

// softmax(q k^T / sqrt(d) + mask) v through scaled_dot_product_attention, on q [B, H, Tq, d],
// k and v [B, H, Tk, d]. `mask` [Tq, Tk] (true = attend) or undefined; `causal` is the
// top-left-aligned causal mask (Tq == Tk) that lets the flash kernel run without a mask. Its
// gradient is not differentiable again. Only where kHasFusedAttention (else std::logic_error).
torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& mask, bool causal);

// The key a torch::optim optimizer keeps a parameter's state under: the address of its
// TensorImpl, printed to a string before 2.x and the pointer itself after.
using OptimizerStateKey = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;
template <typename Key = OptimizerStateKey>  // a template, so that only the branch taken is compiled
Key optimizer_state_key(const torch::Tensor& parameter) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;
    key << static_cast<const void*>(parameter.unsafeGetTensorImpl());
    return key.str();
  } else {
    return parameter.unsafeGetTensorImpl();
  }
}

// The most memory LibTorch's caching allocator has handed out on `device` since the last reset,
// in bytes; -1 on the CPU and in builds without CUDA.
int64_t device_peak_memory(torch::Device device);
void reset_device_peak_memory(torch::Device device);

// Waits until `device` has finished the work queued on it (timings); nothing on the CPU.
void synchronize(torch::Device device);

}  // namespace ttt

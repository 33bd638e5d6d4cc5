#include "util/runtime.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "util/allocator.h"

namespace ttt {
namespace {

// OpenBLAS's pthread build keeps a pool of its own for matrix products (OPENBLAS_NUM_THREADS,
// else OMP_NUM_THREADS, else one thread per core): it follows backend.num_threads too. Looked up
// at run time, since LibTorch may use another BLAS.
void set_blas_threads(int n) {
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(n);
}

}  // namespace

void prefer_passive_openmp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/1);
  execv("/proc/self/exe", argv);  // returns only on failure: then run on as we are
}

torch::Device setup_runtime(const BackendConfig& backend, int64_t local_rank) {
  static std::once_flag allocator_tuned;
  std::call_once(allocator_tuned, tune_allocator_for_tensors);
  if (backend.num_threads > 0) {
    torch::set_num_threads(static_cast<int>(backend.num_threads));
    set_blas_threads(static_cast<int>(backend.num_threads));
  }
  if (backend.deterministic) {
    // cuBLAS reproduces its results only with a fixed workspace, read when its handle is made.
    setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
  }
  torch::Device device(backend.device);
  if (device.is_cuda() && !device.has_index())
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
  if (device.is_cuda() && !torch::cuda::is_available())
    throw ConfigError("backend.device=" + backend.device + " but this LibTorch build or machine has no CUDA device");
  if (device.is_cuda() && device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count()))
    throw ConfigError("backend.device=" + backend.device + " but this machine has " +
                      std::to_string(torch::cuda::device_count()) + " CUDA device(s)");
  return device;
}

}  // namespace ttt

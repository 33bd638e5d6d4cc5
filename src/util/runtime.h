// The one place that prepares this process for tensor work from the configuration's backend
// section: the allocator, the intra-op threads and the device. Every command and benchmark that
// runs the model calls it before building weights.
#pragma once

#include <torch/torch.h>

#include "config/config.h"

namespace ttt {

// Tunes the allocator for large tensors (once per process, util/allocator.h), sets
// backend.num_threads intra-op threads (0 keeps LibTorch's default), turns on deterministic
// algorithms for backend.deterministic and returns backend.device;
// "cuda" without an index is the process's own device, cuda:<local_rank> (dist/launch.h).
// A CUDA device on a build or machine without CUDA is a ConfigError.
torch::Device setup_runtime(const BackendConfig& backend, int64_t local_rank = 0);

}  // namespace ttt

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

// LibTorch's intra-op threads (libgomp here) spin between parallel regions by default, on the
// cores OpenBLAS's own threads need for the matrix products: with two of each on two cores a step
// ran 2-3x slower than with one. libgomp reads OMP_WAIT_POLICY once, when it loads, so a program
// that wants it passive must set it before it starts: when the variable is unset this sets it
// and re-executes the program with the same arguments (same process id); a value already set
// (any value) is kept. Call first thing in main(). TTT's programs do.
void prefer_passive_openmp_wait(char** argv);

}  // namespace ttt

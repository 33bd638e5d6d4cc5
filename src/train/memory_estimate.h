// The memory one rank needs to train a configuration, from shapes alone (nothing is allocated, so
// 3B at 128K prints instantly): parameters, gradients, AdamW moments, the gradient buckets of a
// distributed run, and the peak of one micro-batch's activations under the configured
// recomputation. `ttt info --world-size N [--device-memory 80GiB]` prints it.
//
// The activation model counts the tensors autograd keeps in this implementation's forward pass
// (attention by query blocks, fp32 softmax and norms, the chunked inner loop with its recomputed
// groups; see memory_estimate.cpp), not a generic transformer formula. scripts/bench_memory.sh
// compares it with the measured peak of real steps (docs/distributed.md states the error).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace ttt {

struct MemoryEstimate {
  int64_t world_size = 1;
  int64_t sequences_per_micro_batch = 0;  // global_batch_size / (world_size * accum_steps)
  // Bytes, per rank.
  double parameters = 0;        // every weight, in model.param_dtype
  double gradients = 0;         // the trainable (training.spec_outer) weights' gradients
  double optimizer_state = 0;   // AdamW's two moments of the trainable weights
  double gradient_buckets = 0;  // flat all-reduce buckets (distributed runs only)
  double activations = 0;       // the peak of one micro-batch's forward and backward pass
  std::string activation_peak;  // which phase of the step the peak is in
  double total() const { return parameters + gradients + optimizer_state + gradient_buckets + activations; }
};

// The estimate has fallen short of the measured peak by up to this factor (scripts/bench_memory.sh,
// docs/distributed.md: tensors it does not model, the heap's own slack); a run is said to fit only
// with this much room.
inline constexpr double kMemoryEstimateMargin = 1.5;

// Throws ConfigError when the batch does not divide among world_size ranks.
MemoryEstimate estimate_training_memory(const Config& config, int64_t world_size);

// "80GiB", "512MiB", "1.5TB", "2e9" -> bytes. Throws ConfigError naming `what` for anything else.
double parse_byte_size(const std::string& text, const std::string& what);

// 1536 MiB -> "1.50 GiB".
std::string format_bytes(double bytes);

}  // namespace ttt

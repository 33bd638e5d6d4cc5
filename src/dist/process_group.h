// The processes of a data-parallel run and the collectives they use, on LibTorch's c10d:
// rendezvous through a TCPStore at the master address, Gloo on CPU and NCCL on CUDA. A group of
// one process (the default) makes every collective the identity, so training and evaluation have
// no single-process branches.
//
// Faults end the run, they never hang it: every collective and store operation is bounded by the
// timeout (backend.dist_timeout_s), and a failure is a DistError naming the ranks that were lost.
// Each rank keeps a heartbeat in the store (its own connection, one write a second); when a
// collective fails, the ranks whose heartbeat stopped are the lost ones.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "dist/launch.h"

namespace ttt {

// A lost peer, an unreachable master, a timed-out collective: the process cannot continue its part
// of the run and exits (the CLI exits without unwinding, so no destructor waits on a dead peer).
class DistError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An all-reduce in flight (a gradient bucket); wait() blocks until it is done, throws DistError.
class PendingReduce {
 public:
  virtual ~PendingReduce() = default;
  virtual void wait() = 0;
};

class ProcessGroup {
 public:
  // One process.
  ProcessGroup();
  // Joins the run `launch` describes. Throws DistError within `timeout` when the master cannot be
  // reached or its port is taken.
  ProcessGroup(const LaunchInfo& launch, torch::Device device, std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int64_t rank() const { return launch_.rank; }
  int64_t world_size() const { return launch_.world_size; }
  int64_t local_rank() const { return launch_.local_rank; }
  bool is_main() const { return launch_.rank == 0; }
  bool distributed() const { return launch_.world_size > 1; }
  const LaunchInfo& launch() const { return launch_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // In place, over all ranks (tensors on the group's device).
  void all_reduce_sum(torch::Tensor& tensor);
  void all_reduce_max(torch::Tensor& tensor);
  std::unique_ptr<PendingReduce> all_reduce_sum_async(torch::Tensor& tensor);
  void broadcast(torch::Tensor& tensor, int64_t root = 0);
  // A number every rank has, reduced over the ranks (for logging).
  double mean(double value);
  double max(double value);
  void barrier();
  // Small values through the store: rank 0's `value` on every rank; every rank's value, by rank.
  std::string broadcast_string(const std::string& value);
  std::vector<std::string> all_gather_strings(const std::string& value);

  // Throws DistError for a failed collective: names the lost ranks (whose heartbeat stopped) or,
  // when every rank is alive, says the operation timed out.
  [[noreturn]] void fail(const std::string& operation, const std::string& cause) const;

 private:
  struct Impl;
  LaunchInfo launch_;
  std::chrono::milliseconds timeout_{0};
  torch::Device device_{torch::kCPU};  // where the collectives' tensors live (NCCL: the GPU)
  std::unique_ptr<Impl> impl_;
  int64_t store_sequence_ = 0;  // every rank makes the same store exchanges in the same order
};

// "rank 0 of 2 (torchrun, rendezvous 127.0.0.1:29500)".
std::string describe(const ProcessGroup& group);

// Whether this build can make process groups on the CPU: Gloo's headers were found beside LibTorch
// (a PyTorch wheel ships none). CUDA groups need NCCL instead.
bool cpu_process_groups_available();

// The group of this process in the run `launch` describes (a group of one when it is not
// distributed), with backend.dist_timeout_s as the timeout.
std::unique_ptr<ProcessGroup> make_process_group(const Config& config, const LaunchInfo& launch, torch::Device device);

// Fails with a one-line ConfigError when the ranks did not resolve the same configuration,
// naming the first key whose value differs from rank 0's (a no-op for one process).
void check_same_config(ProcessGroup& group, const Config& config);

}  // namespace ttt

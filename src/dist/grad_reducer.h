// Data-parallel gradient averaging: after a step's backward passes every rank holds the mean over
// ranks of its gradients, as one process would with the whole global batch. Gradients are copied
// into flat buckets of about backend.bucket_size_mb (in reverse parameter order, the order the
// backward pass finishes them; one dtype and device per bucket), and each bucket is all-reduced
// as one tensor.
//
// With overlap, a bucket's all-reduce starts inside the backward pass as soon as its last gradient
// is final, while the backward pass goes on. A gradient is final after a known number of
// accumulations (a meta step backpropagates several times, through each group of recomputed
// chunks): the first step counts them, as DDP's static_graph does, and later steps start each
// bucket at its count. A step whose counts differ from the first's reduces its buckets again
// after the backward pass, so a changed graph costs time, never correctness.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "dist/process_group.h"

namespace ttt {

class GradientReducer {
 public:
  GradientReducer(ProcessGroup& group, std::vector<torch::Tensor> params, int64_t bucket_bytes, bool overlap);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Around the backward passes of one step.
  void begin_step();
  void finish_step();

  int64_t num_buckets() const;
  // Bucket all-reduces started from a gradient hook, inside a backward pass (overlap), in total.
  int64_t buckets_started_in_backward() const;
  // Seconds finish_step() spent launching and waiting for all-reduces (the communication the
  // backward pass did not hide), summed since construction.
  double exposed_communication_seconds() const { return exposed_seconds_; }

  struct Bucket;
  struct State;  // shared with the gradient hooks

 private:
  std::shared_ptr<State> state_;  // shared with the hooks
  double exposed_seconds_ = 0.0;
};

}  // namespace ttt

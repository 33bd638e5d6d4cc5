#include "dist/grad_reducer.h"

#include <torch/csrc/autograd/function_hook.h>

#include "util/clock.h"

namespace ttt {

struct GradientReducer::Bucket {
  std::vector<size_t> params;  // indices into State::params
  std::vector<int64_t> offsets;
  torch::Tensor flat;
  int64_t pending_params = 0;  // params whose gradient is not final yet (this step)
  std::unique_ptr<PendingReduce> reduce;
};

struct GradientReducer::State {
  ProcessGroup* group = nullptr;
  std::vector<torch::Tensor> params;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;
  std::vector<int64_t> count;     // accumulations into each gradient this step
  std::vector<int64_t> expected;  // accumulations of a final gradient, learned on the first step
  bool overlap = false, armed = false, learned = false;
  int64_t started_in_backward = 0;
  // The parameters' gradient accumulators, kept alive: a parameter holds its accumulator weakly,
  // and a new graph would otherwise get a fresh one without the hook.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;

  void launch(Bucket& b) {
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < b.params.size(); ++k) {
      const auto& g = params[b.params[k]].grad();
      auto slot = b.flat.narrow(0, b.offsets[k], params[b.params[k]].numel());
      if (g.defined())
        slot.copy_(g.reshape(-1));
      else
        slot.zero_();  // every rank runs the same graph: the gradient is undefined on all of them
    }
    b.reduce = group->all_reduce_sum_async(b.flat);
  }

  void on_accumulated(size_t i) {
    if (!armed) return;
    ++count[i];
    if (!learned || count[i] != expected[i]) return;
    Bucket& b = buckets[bucket_of[i]];
    if (--b.pending_params == 0) {
      launch(b);
      ++started_in_backward;
    }
  }

  void reset_step() {
    std::fill(count.begin(), count.end(), 0);
    for (auto& b : buckets) {
      b.reduce.reset();
      b.pending_params = 0;
      for (size_t i : b.params) b.pending_params += expected[i] > 0 ? 1 : 0;
    }
  }
};

namespace {

class AccumulatedHook : public torch::autograd::FunctionPostHook {
 public:
  AccumulatedHook(std::weak_ptr<GradientReducer::State> state, size_t index)
      : state_(std::move(state)), index_(index) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    if (auto s = state_.lock()) s->on_accumulated(index_);
    return outputs;
  }

 private:
  std::weak_ptr<GradientReducer::State> state_;
  size_t index_;
};

}  // namespace

GradientReducer::GradientReducer(ProcessGroup& group, std::vector<torch::Tensor> params, int64_t bucket_bytes,
                                 bool overlap)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.group = &group;
  s.params = std::move(params);
  s.overlap = overlap;
  s.bucket_of.assign(s.params.size(), 0);
  s.count.assign(s.params.size(), 0);
  s.expected.assign(s.params.size(), 0);
  if (!group.distributed()) return;
  // Reverse order: the backward pass finishes the last parameters first.
  int64_t bytes = 0;
  for (size_t n = s.params.size(); n-- > 0;) {
    const auto& p = s.params[n];
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fits = !s.buckets.empty() && bytes + size <= bucket_bytes &&
                      s.buckets.back().flat.scalar_type() == p.scalar_type() &&
                      s.buckets.back().flat.device() == p.device();
    if (!fits) {
      s.buckets.emplace_back();
      s.buckets.back().flat = torch::empty({0}, p.options().requires_grad(false));
      bytes = 0;
    }
    Bucket& b = s.buckets.back();
    b.params.push_back(n);
    b.offsets.push_back(b.flat.numel());
    b.flat = torch::empty({b.flat.numel() + p.numel()}, b.flat.options());
    s.bucket_of[n] = s.buckets.size() - 1;
    bytes += size;
  }
  if (overlap)
    for (size_t i = 0; i < s.params.size(); ++i) {
      s.accumulators.push_back(torch::autograd::impl::grad_accumulator(s.params[i]));
      s.accumulators.back()->add_post_hook(std::make_unique<AccumulatedHook>(std::weak_ptr<State>(state_), i));
    }
}

GradientReducer::~GradientReducer() = default;  // the hooks hold a weak reference and fall silent

int64_t GradientReducer::num_buckets() const { return static_cast<int64_t>(state_->buckets.size()); }

int64_t GradientReducer::buckets_started_in_backward() const { return state_->started_in_backward; }

void GradientReducer::begin_step() {
  if (!state_->group->distributed()) return;
  state_->reset_step();
  state_->armed = state_->overlap;
}

void GradientReducer::finish_step() {
  if (!state_->group->distributed()) return;
  State& s = *state_;
  const double start = monotonic_seconds();
  s.armed = false;
  // The first step learns how many accumulations make each gradient final. A later step that
  // accumulated differently may have started a bucket early: all are reduced again below.
  const bool as_learned = !s.learned || s.count == s.expected;
  if (s.overlap && !s.learned) {
    s.expected = s.count;
    s.learned = true;
  }
  for (auto& b : s.buckets)
    if (!b.reduce || !as_learned) {
      if (b.reduce) b.reduce->wait();
      s.launch(b);
    }
  torch::NoGradGuard no_grad;
  const double inverse_world = 1.0 / static_cast<double>(state_->group->world_size());
  for (auto& b : s.buckets) {
    b.reduce->wait();
    b.flat.mul_(inverse_world);
    for (size_t k = 0; k < b.params.size(); ++k) {
      auto& p = s.params[b.params[k]];
      if (p.grad().defined()) p.mutable_grad().copy_(b.flat.narrow(0, b.offsets[k], p.numel()).view_as(p));
    }
  }
  s.reset_step();
  exposed_seconds_ += monotonic_seconds() - start;
}

}  // namespace ttt

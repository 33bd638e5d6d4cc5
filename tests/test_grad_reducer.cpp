// GradientReducer on a real two-rank Gloo group (two threads of this process): after a step, each
// rank holds the mean over ranks of its accumulated gradients, with several buckets, with and
// without overlap, and still when a step accumulates differently from the first (overlap learns
// the accumulation counts on the first step).
#include <gtest/gtest.h>

#include <thread>

#include "dist/grad_reducer.h"
#include "support/free_port.h"
#include "support/process_groups.h"

using namespace ttt;

namespace {

// Runs fn(group) on ranks 0 and 1 of a loopback group, each on its own thread.
template <typename Fn>
void on_two_ranks(Fn fn) {
  const int port = ttt::testing::free_port();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(2);
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        LaunchInfo launch;
        launch.rank = r;
        launch.world_size = 2;
        launch.master_port = port;
        ProcessGroup group(launch, torch::kCPU, std::chrono::seconds(30));
        fn(group);
        group.barrier();
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

std::vector<torch::Tensor> make_params() {
  torch::manual_seed(0);
  return {torch::randn({5}).requires_grad_(), torch::randn({3, 4}).requires_grad_(), torch::randn({7}).requires_grad_(),
          torch::randn({2, 2}).requires_grad_()};
}

// The gradient rank r accumulates in `passes` backward passes at step `step`: d/dw of
// sum(w * coefficient) is the coefficient.
torch::Tensor coefficient(const torch::Tensor& w, int64_t rank, int64_t step, int64_t pass, size_t index) {
  return torch::full_like(w, static_cast<double>(1 + rank * 10 + step * 100 + pass * 1000 + index)).detach();
}

void run_steps(ProcessGroup& group, bool overlap, int64_t bucket_bytes) {
  auto params = make_params();
  GradientReducer reducer(group, params, bucket_bytes, overlap);
  EXPECT_GT(reducer.num_buckets(), 1);
  // Step 3 accumulates three passes where the others take two: a changed graph stays correct.
  for (int64_t step = 0; step < 4; ++step) {
    const int64_t passes = step == 3 ? 3 : 2;
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    reducer.begin_step();
    for (int64_t pass = 0; pass < passes; ++pass) {
      torch::Tensor loss = torch::zeros({});
      // One parameter takes part in the first pass only: its gradient is final early.
      for (size_t i = 0; i < params.size(); ++i)
        if (i != 2 || pass == 0) loss = loss + (params[i] * coefficient(params[i], group.rank(), step, pass, i)).sum();
      loss.backward();
    }
    reducer.finish_step();
    for (size_t i = 0; i < params.size(); ++i) {
      torch::Tensor expected = torch::zeros_like(params[i]);
      for (int64_t r = 0; r < 2; ++r)
        for (int64_t pass = 0; pass < (i == 2 ? 1 : passes); ++pass)
          expected += coefficient(params[i], r, step, pass, i) / 2.0;
      EXPECT_TRUE(torch::allclose(params[i].grad(), expected))
          << "rank " << group.rank() << " step " << step << " param " << i << " overlap " << overlap;
    }
  }
}

}  // namespace

TEST(GradientReducer, AveragesAccumulatedGradientsOverRanks) {
  REQUIRE_CPU_PROCESS_GROUPS();
  on_two_ranks([](ProcessGroup& group) { run_steps(group, /*overlap=*/false, /*bucket_bytes=*/64); });
}

TEST(GradientReducer, OverlapGivesTheSameAverages) {
  REQUIRE_CPU_PROCESS_GROUPS();
  on_two_ranks([](ProcessGroup& group) { run_steps(group, /*overlap=*/true, /*bucket_bytes=*/64); });
}

TEST(GradientReducer, OneProcessLeavesGradientsAlone) {
  ProcessGroup one;
  auto params = make_params();
  GradientReducer reducer(one, params, 64, true);
  reducer.begin_step();
  (params[0] * 3).sum().backward();
  reducer.finish_step();
  EXPECT_TRUE(torch::equal(params[0].grad(), torch::full({5}, 3.0)));
  EXPECT_EQ(reducer.num_buckets(), 0);
}

TEST(ProcessGroup, CollectivesAndStoreExchanges) {
  REQUIRE_CPU_PROCESS_GROUPS();
  on_two_ranks([](ProcessGroup& group) {
    auto t = torch::full({3}, static_cast<double>(group.rank() + 1), torch::kFloat64);
    group.all_reduce_sum(t);
    EXPECT_TRUE(torch::equal(t, torch::full({3}, 3.0, torch::kFloat64)));
    EXPECT_DOUBLE_EQ(group.max(static_cast<double>(group.rank())), 1.0);
    EXPECT_DOUBLE_EQ(group.mean(static_cast<double>(group.rank())), 0.5);
    auto b = torch::full({2}, static_cast<float>(group.rank() + 7));
    group.broadcast(b);
    EXPECT_TRUE(torch::equal(b, torch::full({2}, 7.0f)));
    EXPECT_EQ(group.broadcast_string("from " + std::to_string(group.rank())), "from 0");
    EXPECT_EQ(group.all_gather_strings(std::to_string(group.rank())), (std::vector<std::string>{"0", "1"}));
  });
}

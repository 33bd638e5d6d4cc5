// One rank of a data-parallel benchmark, launched like training (torchrun, or RANK/WORLD_SIZE/
// MASTER_ADDR/MASTER_PORT as scripts/bench_dist.sh sets them). Rank 0 prints one JSON object.
//   bench_dist train <config overrides...>   trains on the dummy dataset: tokens/s (median over
//                                           the steps after the first two), seconds per step and
//                                           the share of it spent in gradient all-reduces that
//                                           the backward pass did not hide
//   bench_dist allreduce                     all-reduce of 1-64 MiB fp32 buffers: algorithm and
//                                           bus bandwidth (GB/s), as nccl-tests report them
#include <algorithm>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "config/loader.h"
#include "dist/process_group.h"
#include "train/trainer.h"
#include "util/clock.h"
#include "util/runtime.h"

using namespace ttt;

namespace {

nlohmann::json bench_train(const std::vector<std::string>& overrides) {
  const Config config = load_config(overrides);
  Trainer trainer(config);
  trainer.train();
  if (!trainer.process_group().is_main()) return nullptr;
  std::ifstream metrics(trainer.run_dir() / "metrics.jsonl");
  std::vector<double> tokens_per_second;
  double step_seconds = 0.0;
  const double tokens = static_cast<double>(config.training.global_batch_size * config.training.seq_length);
  for (std::string line; std::getline(metrics, line);) {
    const auto j = nlohmann::json::parse(line);
    const double tps = j.at("tokens_per_second").get<double>();
    step_seconds += tokens / tps;
    if (j.at("step").get<int64_t>() >= 2) tokens_per_second.push_back(tps);
  }
  std::sort(tokens_per_second.begin(), tokens_per_second.end());
  const double median = tokens_per_second.empty() ? 0.0 : tokens_per_second[tokens_per_second.size() / 2];
  return {{"bench", "train"},
          {"world_size", trainer.process_group().world_size()},
          {"train_mode", to_string(config.training.train_mode)},
          {"seq_length", config.training.seq_length},
          {"global_batch_size", config.training.global_batch_size},
          {"num_threads", config.backend.num_threads},
          {"overlap_grad_reduce", config.backend.overlap_grad_reduce},
          {"tokens_per_second", median},
          {"seconds_per_step", tokens / median},
          {"exposed_communication_share", trainer.exposed_communication_seconds() / step_seconds}};
}

nlohmann::json bench_allreduce() {
  Config config;
  const LaunchInfo launch = detect_launch(config.backend);
  const torch::Device device = setup_runtime(config.backend, launch.local_rank);
  auto group = make_process_group(config, launch, device);
  nlohmann::json sizes = nlohmann::json::array();
  for (int64_t mib : {1, 4, 16, 64}) {
    auto buffer = torch::ones({mib << 18}, torch::kFloat32);
    for (int i = 0; i < 2; ++i) group->all_reduce_sum(buffer);
    const int iterations = 5;
    group->barrier();
    const double start = monotonic_seconds();
    for (int i = 0; i < iterations; ++i) group->all_reduce_sum(buffer);
    const double seconds = (monotonic_seconds() - start) / iterations;
    const double n = static_cast<double>(group->world_size()), bytes = static_cast<double>(mib << 20);
    sizes.push_back({{"mib", mib},
                     {"seconds", seconds},
                     {"algbw_gb_s", bytes / seconds / 1e9},
                     {"busbw_gb_s", bytes / seconds / 1e9 * 2 * (n - 1) / n}});
  }
  if (!group->is_main()) return nullptr;
  return {{"bench", "allreduce"}, {"world_size", group->world_size()}, {"backend", "gloo"}, {"sizes", sizes}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_dist train <overrides...> | bench_dist allreduce" << std::endl;
    return 2;
  }
  try {
    const std::string what = argv[1];
    const nlohmann::json out =
        what == "allreduce" ? bench_allreduce() : bench_train(std::vector<std::string>(argv + 2, argv + argc));
    if (!out.is_null()) std::cout << out.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}

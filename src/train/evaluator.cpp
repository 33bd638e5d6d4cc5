#include "train/evaluator.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/loader.h"
#include "data/dataset.h"
#include "model/layers.h"
#include "report/plot.h"
#include "report/position_bins.h"
#include "train/checkpoint.h"
#include "train/run_directory.h"
#include "ttt/sequence_loss.h"
#include "util/file_io.h"
#include "util/runtime.h"

namespace ttt {

EvalResult evaluate(const Config& config, const ModelWeights& weights, const TttOptions& ttt, torch::Device device,
                    ProcessGroup& group) {
  auto loader = make_eval_loader(config, group.rank(), group.world_size());
  // Outer weights are constants here; the inner loop still needs autograd for its own steps.
  ModelWeights frozen = weights;
  for (auto& t : frozen.tensors()) t = t.detach();

  EvalResult result;
  // Sums in float64 on the device: the host waits for the device once, at the end.
  const auto sum_options = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  auto loss_sum = torch::zeros({1}, sum_options), nll_sum = torch::zeros({config.training.seq_length}, sum_options);
  while (auto batch = loader->next()) {
    auto out = sequence_loss(config.model, frozen, batch->to(device), ttt);
    loss_sum = loss_sum + out.per_sequence.sum().to(torch::kFloat64);
    nll_sum = nll_sum + out.token_nll.to(torch::kFloat64).sum(0);
    result.num_sequences += out.per_sequence.size(0);
  }
  // One all-reduce of [loss sum, sequences, NLL sums by position].
  auto sums = torch::cat({loss_sum, torch::full({1}, static_cast<double>(result.num_sequences), sum_options), nll_sum});
  group.all_reduce_sum(sums);
  sums = sums.cpu();
  const double loss_total = sums[0].item<double>();
  result.num_sequences = static_cast<int64_t>(std::llround(sums[1].item<double>()));
  nll_sum = sums.slice(0, 2);
  result.num_dropped = loader->num_samples() - result.num_sequences;
  if (result.num_sequences == 0) return result;
  result.loss = loss_total / result.num_sequences;
  auto mean = nll_sum / static_cast<double>(result.num_sequences);
  result.nll_by_position.assign(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel());
  return result;
}

void write_eval_outputs(const std::string& dir, const EvalResult& result, const std::string& split, int64_t step,
                        const std::string& label, const TttOptions& ttt, const ModelConfig& model) {
  const std::filesystem::path d(dir);
  std::filesystem::create_directories(d);
  nlohmann::json j = {{"split", split},
                      {"step", step},
                      {"loss", result.loss},
                      {"num_sequences", result.num_sequences},
                      {"num_dropped", result.num_dropped},
                      {"test_time_training", ttt.enabled},
                      {"inner_learning_rate", ttt.reported_inner_lr(model)},
                      {"nll_by_position", result.nll_by_position}};
  const auto bins = report::log_position_bins(result.nll_by_position, kEvalBinsPerOctave);
  nlohmann::json binned = {{"bins_per_octave", kEvalBinsPerOctave},
                           {"first", nlohmann::json::array()},
                           {"last", nlohmann::json::array()},
                           {"nll", nlohmann::json::array()}};
  for (const auto& bin : bins) {
    binned["first"].push_back(bin.first);
    binned["last"].push_back(bin.last);
    binned["nll"].push_back(bin.mean);
  }
  j["nll_binned"] = binned;
  write_file_atomically((d / "eval.json").string(), j.dump() + "\n");
  std::ostringstream csv;
  csv << "position,nll\n";
  csv.precision(9);
  for (size_t i = 0; i < result.nll_by_position.size(); ++i) csv << i << "," << result.nll_by_position[i] << "\n";
  write_file_atomically((d / "eval_nll_by_position.csv").string(), csv.str());
  std::ostringstream binned_csv;
  binned_csv << "first,last,nll\n";
  binned_csv.precision(9);
  for (const auto& bin : bins) binned_csv << bin.first << "," << bin.last << "," << bin.mean << "\n";
  write_file_atomically((d / "eval_nll_binned.csv").string(), binned_csv.str());
  if (result.nll_by_position.empty()) return;
  const std::vector<Series> curves = {
      position_series(label + ", every position", result.nll_by_position),
      binned_series(label + ", mean of " + std::to_string(kEvalBinsPerOctave) + " bins per doubling", bins)};
  PlotOptions o;
  o.title = "Loss by token position (" + split + ")";
  o.x_label = "token position";
  o.y_label = "NLL (nats)";
  o.log_x = true;
  write_line_plot_svg((d / "loss_by_position.svg").string(), curves, o);
}

EvalResult evaluate_and_report(const Config& config, const ModelWeights& weights, const TttOptions& ttt,
                               torch::Device device, int64_t step, const std::filesystem::path& run_dir,
                               ProcessGroup& group) {
  const std::string& split = config.training.eval_split;
  const EvalResult result = evaluate(config, weights, ttt, device, group);
  if (!std::isfinite(result.loss))
    throw std::runtime_error("evaluation gave a non-finite loss (" + std::to_string(result.loss) +
                             "): the weights or the inner steps diverge; no eval outputs written");
  if (!group.is_main()) return result;
  write_eval_outputs(run_dir.string(), result, split, step, run_dir.filename().string(), ttt, config.model);
  std::cout << "eval: " << split << " loss " << result.loss << " over " << result.num_sequences << " sequences ("
            << result.num_dropped << " dropped: the last partial batch of " << eval_batch_size(config.training) << ")";
  if (ttt.enabled) std::cout << ", inner lr " << ttt.lr;
  std::cout << " -> " << (run_dir / "eval.json").string() << std::endl;
  return result;
}

std::string checkpoint_to_evaluate(const Config& config) {
  const RestorePlan plan = restore_plan(config);
  if (plan.part == LoadPart::kNone)
    throw std::runtime_error("nothing to evaluate: no checkpoint in " + *config.checkpoint.checkpoint_dir +
                             " and training.load_part=none (pass --checkpoint or train first)");
  return plan.step_dir;
}

EvalResult evaluate_checkpoint(const Config& config, const std::string& step_dir) {
  const LaunchInfo launch = detect_launch(config.backend);
  const torch::Device device = setup_runtime(config.backend, launch.local_rank);
  auto group = make_process_group(config, launch, device);
  check_same_config(*group, config);
  // Rank 0's choice of checkpoint holds for all (the latest may change while they look).
  const std::string chosen = group->broadcast_string(step_dir);
  const auto weights = checkpoint_weights(chosen, config.model, device);
  const int64_t step = load_checkpoint_state(chosen).step;
  const auto run_dir = run_directory(config);
  if (group->is_main()) {
    std::cout << "loaded weights from " << chosen << std::endl;
    std::filesystem::create_directories(run_dir);
    // The training run's config.yaml stays; the evaluation's own configuration goes beside it.
    write_file_atomically((run_dir / "eval_config.yaml").string(), to_yaml(config));
  }
  auto result = evaluate_and_report(config, weights, TttOptions::for_inference(config), device, step, run_dir, *group);
  group->barrier();
  return result;
}

}  // namespace ttt

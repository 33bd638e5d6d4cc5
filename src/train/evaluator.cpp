#include "train/evaluator.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "report/plot.h"
#include "ttt/sequence_loss.h"
#include "util/file_io.h"

namespace ttt {

EvalResult evaluate(const Config& config, const ModelWeights& weights, SequenceLoader& loader, torch::Device device,
                    int64_t max_batches) {
  // Outer weights are constants here; the inner loop still needs autograd for its own steps.
  ModelWeights frozen = weights;
  for (auto& t : frozen.tensors()) t = t.detach();
  const auto ttt = TttOptions::for_inference(config);

  EvalResult result;
  torch::Tensor nll_sum;
  double loss_sum = 0.0;
  for (int64_t n = 0; max_batches < 0 || n < max_batches; ++n) {
    auto batch = loader.next();
    if (!batch) break;
    auto out = sequence_loss(config.model, frozen, batch->to(device), ttt);
    loss_sum += out.per_sequence.sum().item<double>();
    auto s = out.token_nll.to(torch::kFloat64).sum(0).cpu();
    nll_sum = nll_sum.defined() ? nll_sum + s : s;
    result.num_sequences += out.per_sequence.size(0);
  }
  if (result.num_sequences == 0) return result;
  result.loss = loss_sum / result.num_sequences;
  auto mean = nll_sum / static_cast<double>(result.num_sequences);
  result.nll_by_position.assign(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel());
  return result;
}

void write_eval_outputs(const std::string& dir, const EvalResult& result, const std::string& split, int64_t step,
                        const std::string& label) {
  const std::filesystem::path d(dir);
  std::filesystem::create_directories(d);
  const nlohmann::json j = {{"split", split},
                            {"step", step},
                            {"loss", result.loss},
                            {"num_sequences", result.num_sequences},
                            {"nll_by_position", result.nll_by_position}};
  write_file_atomically((d / "eval.json").string(), j.dump() + "\n");
  std::ostringstream csv;
  csv << "position,nll\n";
  csv.precision(9);
  for (size_t i = 0; i < result.nll_by_position.size(); ++i) csv << i << "," << result.nll_by_position[i] << "\n";
  write_file_atomically((d / "eval_nll_by_position.csv").string(), csv.str());
  if (result.nll_by_position.empty()) return;
  Series s{label, {}, result.nll_by_position};
  for (size_t i = 0; i < s.y.size(); ++i) s.x.push_back(static_cast<double>(i + 1));
  PlotOptions o;
  o.title = "Loss by token position (" + split + ")";
  o.x_label = "token position";
  o.y_label = "NLL (nats)";
  o.log_x = true;
  write_line_plot_svg((d / "loss_by_position.svg").string(), {s}, o);
}

}  // namespace ttt

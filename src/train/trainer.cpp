#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "config/loader.h"
#include "data/dataset.h"
#include "model/layers.h"
#include "train/lr_schedule.h"
#include "ttt/inner_optimizer.h"
#include "ttt/training_loss.h"

namespace ttt {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

torch::Device parse_device(const std::string& name) {
  torch::Device device(name);
  if (device.is_cuda() && !torch::cuda::is_available())
    throw ConfigError("backend.device=" + name + " but this LibTorch build or machine has no CUDA device");
  return device;
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  // Written beside, then renamed: a reader never sees half a file.
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

std::filesystem::path run_directory(const Config& config) {
  const auto& t = config.training;
  return std::filesystem::path(t.exp_dir) / t.exp_folder / require(t.exp_name, "training.exp_name");
}

Trainer::Trainer(Config config) : config_(std::move(config)), device_(parse_device(config_.backend.device)) {
  const auto& t = config_.training;
  if (t.global_batch_size % t.accum_steps != 0)
    throw ConfigError("training.global_batch_size must be a multiple of training.accum_steps");
  if (config_.backend.num_threads > 0) torch::set_num_threads(static_cast<int>(config_.backend.num_threads));
  run_dir_ = run_directory(config_);
  std::filesystem::create_directories(run_dir_);
  write_text(run_dir_ / "config.yaml", to_yaml(config_));

  auto loader = make_train_loader(config_);
  std::cout << "data: " << loader->source().describe() << ": " << loader->num_samples() << " samples of "
            << t.seq_length << " tokens" << std::endl;
  train_loader_ = std::make_unique<PrefetchLoader>(std::move(loader));

  weights_ = ModelWeights::initialize(config_.model, static_cast<uint64_t>(t.model_seed),
                                      dtype_from_name(config_.model.param_dtype), device_);
  optimizer_ = std::make_unique<OuterOptimizer>(t.optimizer_outer, t.spec_outer, weights_);
}

StepMetrics Trainer::train_step(int64_t step) {
  const auto& t = config_.training;
  const double start = now_seconds();
  const auto options = TttOptions::from_config(config_, step);

  optimizer_->zero_grad();
  double loss_sum = 0.0;
  // Accumulation splits the host batch, so the samples of a step do not depend on accum_steps.
  const Batch host = *train_loader_->next();
  const auto inputs = host.input_ids.chunk(t.accum_steps, 0), targets = host.targets.chunk(t.accum_steps, 0),
             masks = host.loss_mask.chunk(t.accum_steps, 0);
  for (int64_t micro = 0; micro < t.accum_steps; ++micro) {
    const Batch batch = Batch{inputs[micro], targets[micro], masks[micro]}.to(device_);
    auto out = loss_and_backward(config_.model, weights_, batch, options, t.inner_remat_freq,
                                 1.0 / static_cast<double>(t.accum_steps));
    loss_sum += out.loss.item<double>();
  }
  StepMetrics m;
  m.step = step;
  m.loss = loss_sum / static_cast<double>(t.accum_steps);
  m.gradient_norm = optimizer_->clip_gradients();
  if (!std::isfinite(m.loss) || !std::isfinite(m.gradient_norm))
    throw std::runtime_error("non-finite " + std::string(std::isfinite(m.loss) ? "gradient" : "loss") + " at step " +
                             std::to_string(step) + "; stopping without applying it");
  m.outer_learning_rate = outer_learning_rate(t.optimizer_outer, step);
  m.inner_learning_rate = options.meta ? options.step.lr : 0.0;
  optimizer_->step(m.outer_learning_rate);
  const double elapsed = now_seconds() - start;
  m.tokens_per_second = static_cast<double>(t.global_batch_size * t.seq_length) / elapsed;
  m.wall_time = now_seconds() - start_time_;
  return m;
}

void Trainer::log_step(const StepMetrics& m) {
  nlohmann::json j = {{"step", m.step},
                      {"loss", m.loss},
                      {"gradient_norm", m.gradient_norm},
                      {"outer_learning_rate", m.outer_learning_rate},
                      {"inner_learning_rate", m.inner_learning_rate},
                      {"tokens_per_second", m.tokens_per_second},
                      {"wall_time", m.wall_time}};
  std::ofstream(run_dir_ / "metrics.jsonl", std::ios::app) << j.dump() << "\n";
  char line[256];
  std::snprintf(line, sizeof(line), "step %lld/%lld  loss %.4f  grad_norm %.3f  lr %.2e  ilr %.3f  tok/s %.0f",
                static_cast<long long>(m.step + 1), static_cast<long long>(config_.training.total_steps), m.loss,
                m.gradient_norm, m.outer_learning_rate, m.inner_learning_rate, m.tokens_per_second);
  std::cout << line << std::endl;
}

EvalResult Trainer::train() {
  const auto& t = config_.training;
  start_time_ = now_seconds();
  std::filesystem::remove(run_dir_ / "metrics.jsonl");
  for (int64_t step = 0; step < t.total_steps; ++step) {
    if (t.break_step >= 0 && step >= t.break_step) break;
    log_step(train_step(step));
  }
  auto val = make_eval_loader(config_);
  auto result = evaluate(config_, weights_, *val, device_);
  nlohmann::json j = {{"split", t.eval_split}, {"loss", result.loss}, {"num_sequences", result.num_sequences},
                      {"nll_by_position", result.nll_by_position}};
  write_text(run_dir_ / "eval.json", j.dump() + "\n");
  std::cout << "eval: " << t.eval_split << " loss " << result.loss << " over " << result.num_sequences
            << " sequences" << std::endl;
  return result;
}

}  // namespace ttt

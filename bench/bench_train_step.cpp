// One outer training step (forward, backward through the inner loop, AdamW) on random tokens:
// seconds per step, tokens/s and the process's peak resident memory (and the device's, on CUDA),
// as one JSON object, with the memory the step needed beside `ttt info --world-size 1`'s estimate
// of it, and model FLOPs utilisation: the model's training FLOPs (train/flops.h) per second over
// the peak of a square matrix product in the compute dtype, measured in the same process after
// the steps (--peak-size N, 0 skips it).
// Run one case per process (scripts/bench_train_step.sh does) so the peak memory is the case's.
// --save-case FILE writes the first step's inputs for bench/peer_pytorch.py: the initial weights and
// the token batch as safetensors, with the model's settings and our loss and gradient norm of
// that step in its metadata (key "case", JSON).
// --profile FILE records the timed steps with LibTorch's profiler and writes, as JSON, every
// operator with the shapes of its inputs: calls, total and self time (without the operators it
// called); scripts/profile_summary.py prints it as a table.
//   bench_train_step [--steps N] [--warmup N] [--peak-size N] [--save-case FILE] [--profile FILE]
//                    <config overrides...>
#include <sys/resource.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "config/loader.h"
#include "data/dataset.h"
#include "model/layers.h"
#include "model/weights.h"
#include "train/flops.h"
#include "train/memory_estimate.h"
#include "train/outer_optimizer.h"
#include "ttt/sequence_loss.h"
#include "util/allocator.h"
#include "util/file_io.h"
#include "util/runtime.h"
#include "util/safetensors.h"
#include "util/strings.h"
#include "util/torch_compat.h"

using namespace ttt;

namespace {

// This process's resident memory now (/proc/self/statm).
double resident_mib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// FLOP/s of an n x n x n matrix product in `dtype` on `device`: the best of five after a warm-up.
double matmul_peak_flops(int64_t n, torch::ScalarType dtype, torch::Device device) {
  torch::NoGradGuard no_grad;
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  const auto a = torch::randn({n, n}, options), b = torch::randn({n, n}, options);
  auto c = torch::matmul(a, b);
  synchronize(device);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    c = torch::matmul(a, b);
    synchronize(device);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / dt);
  }
  return best;
}

// Self and total time of every (operator, input shapes) in the profiler's events, as JSON rows,
// largest self time first. Each thread's push/pop events nest; a pop closes the latest push.
nlohmann::json summarise_profile(const torch::autograd::profiler::thread_event_lists& threads) {
  using torch::autograd::profiler::EventKind;
  using torch::autograd::profiler::LegacyEvent;
  struct Row {
    double self_us = 0, total_us = 0;
    int64_t calls = 0;
  };
  std::map<std::pair<std::string, std::vector<std::vector<int64_t>>>, Row> rows;
  for (const auto& events : threads) {
    struct Open {
      const LegacyEvent* push;
      double children_us;
    };
    std::vector<Open> stack;
    for (const auto& e : events) {
      if (e.kind() == EventKind::PushRange) {
        stack.push_back({&e, 0.0});
      } else if (e.kind() == EventKind::PopRange && !stack.empty()) {
        const Open open = stack.back();
        stack.pop_back();
        const double us = open.push->cpuElapsedUs(e);
        Row& row = rows[{open.push->name(), open.push->shapes()}];
        row.self_us += us - open.children_us;
        row.total_us += us;
        row.calls += 1;
        if (!stack.empty()) stack.back().children_us += us;
      }
    }
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [key, row] : rows)
    out.push_back({{"op", key.first},
                   {"shapes", key.second},
                   {"self_ms", row.self_us / 1e3},
                   {"total_ms", row.total_us / 1e3},
                   {"calls", row.calls}});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a["self_ms"].template get<double>() > b["self_ms"].template get<double>();
  });
  return out;
}

// The first step's weights, batch and results, for a peer implementation to check against.
void save_case(const std::string& path, const Config& cfg, const TttOptions& ttt, const OuterOptimizer& opt,
               const ModelWeights& initial, const Batch& batch, double step_lr, double loss, double gradient_norm) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (size_t i = 0; i < initial.layout().size(); ++i)
    tensors.emplace_back(initial.layout()[i].name, initial.tensors()[i].detach());
  tensors.emplace_back("batch.input_ids", batch.input_ids);
  tensors.emplace_back("batch.targets", batch.targets);
  tensors.emplace_back("batch.loss_mask", batch.loss_mask);
  const auto& m = cfg.model;
  nlohmann::json inner = nlohmann::json::array();
  for (const auto& p : ttt.inner) inner.push_back(p.name);
  const nlohmann::json c = {{"train_mode", to_string(cfg.training.train_mode)},
                            {"seq_modeling_block", to_string(m.seq_modeling_block)},
                            {"num_hidden_layers", m.num_hidden_layers},
                            {"hidden_size", m.hidden_size},
                            {"num_attention_heads", m.num_attention_heads},
                            {"intermediate_size", m.intermediate_size},
                            {"suffix_len", m.suffix_len},
                            {"prime", m.prime},
                            {"sliding_window_size", m.sliding_window_size},
                            {"mini_batch_size", m.mini_batch_size},
                            {"rope_theta", m.rope_theta},
                            {"rms_norm_eps", m.rms_norm_eps},
                            {"qk_norm", m.qk_norm},
                            {"pre_norm", m.pre_norm},
                            {"post_norm", m.post_norm},
                            {"tie_word_embeddings", m.tie_word_embeddings},
                            {"compute_dtype", to_string(m.compute_dtype)},
                            {"state_dtype", to_string(m.state_dtype)},
                            {"inner_params", inner},
                            {"trainable", opt.trainable_names()},
                            {"inner_lr", ttt.lr},
                            {"inner_clip", ttt.clip},
                            {"step_lr", step_lr},
                            {"b1", cfg.training.optimizer_outer.b1},
                            {"b2", cfg.training.optimizer_outer.b2},
                            {"outer_clip", cfg.training.optimizer_outer.clip_gradient},
                            {"weight_decay", cfg.training.optimizer_outer.weight_decay},
                            {"inner_remat_freq", cfg.training.inner_remat_freq},
                            {"loss", loss},
                            {"gradient_norm", gradient_norm}};
  save_safetensors(path, tensors, {{"case", c.dump()}});
}

}  // namespace

int main(int argc, char** argv) {
  ttt::prefer_passive_openmp_wait(argv);
  int steps = 2, warmup = 1;
  int64_t peak_size = -1;  // -1: 4096 on the CPU, 8192 on a GPU
  std::string case_path, profile_path;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc)
      steps = std::stoi(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc)
      warmup = std::stoi(argv[++i]);
    else if (a == "--peak-size" && i + 1 < argc)
      peak_size = std::stoll(argv[++i]);
    else if (a == "--save-case" && i + 1 < argc)
      case_path = argv[++i];
    else if (a == "--profile" && i + 1 < argc)
      profile_path = argv[++i];
    else
      overrides.push_back(a);
  }
  try {
    const Config cfg = load_config(overrides);
    const torch::Device device = setup_runtime(cfg.backend);
    const double baseline_mib = resident_mib();  // the process before the model exists
    auto w = ModelWeights::initialize(cfg.model, 0, scalar_type(cfg.model.param_dtype), device);
    OuterOptimizer opt(cfg.training.optimizer_outer, cfg.training.spec_outer, w);
    const int64_t B = cfg.training.global_batch_size, T = cfg.training.seq_length;
    Config dummy = cfg;
    dummy.training.dummy_dataset = true;
    auto loader = make_train_loader(dummy);

    const auto ttt = TttOptions::for_step(cfg, 0);
    const double kLearningRate = 1e-4;
    double total = 0.0;
    reset_device_peak_memory(device);
    std::unique_ptr<torch::autograd::profiler::TLSLegacyProfilerGuard> profile;
    nlohmann::json profile_rows;
    for (int s = 0; s < warmup + steps; ++s) {
      if (s == warmup && !profile_path.empty())
        profile = std::make_unique<torch::autograd::profiler::TLSLegacyProfilerGuard>(
            torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU,
                                                  /*report_input_shapes=*/true),
            [&](const torch::autograd::profiler::thread_event_lists& events) {
              profile_rows = summarise_profile(events);
            });
      auto batch = loader->next()->to(device);
      const auto t0 = std::chrono::steady_clock::now();
      const ModelWeights initial = s == 0 && !case_path.empty() ? w.clone() : ModelWeights();
      opt.zero_grad();
      const auto out = loss_and_backward(cfg.model, w, batch, ttt, cfg.training.inner_remat_freq, 1.0);
      const auto norm = opt.clip_gradients();
      if (s == 0 && !case_path.empty())
        save_case(case_path, cfg, ttt, opt, initial, batch, kLearningRate, out.loss.item<double>(),
                  norm.item<double>());
      opt.step(kLearningRate);
      synchronize(device);
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s >= warmup) total += dt;
    }
    if (profile) {
      profile.reset();  // stops the profiler and summarises its events
      write_file_atomically(profile_path, profile_rows.dump(1) + "\n");
    }
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const double step_s = total / steps;
    nlohmann::json j = {{"benchmark", "train_step"},
                        {"train_mode", to_string(cfg.training.train_mode)},
                        {"compute_dtype", to_string(cfg.model.compute_dtype)},
                        {"model", cfg.model.name},
                        {"seq_length", T},
                        {"sliding_window_size", cfg.model.sliding_window_size},
                        {"mini_batch_size", cfg.model.mini_batch_size},
                        {"inner_remat_freq", cfg.training.inner_remat_freq},
                        {"batch_size", B},
                        {"device", cfg.backend.device},
                        {"threads", torch::get_num_threads()},
                        {"malloc", malloc_in_use()},
                        {"steps", steps},
                        {"seconds_per_step", step_s},
                        {"tokens_per_second", static_cast<double>(B * T) / step_s},
                        {"peak_rss_mib", usage.ru_maxrss / 1024.0}};
    // The estimate of `ttt info --world-size 1` against what the step used: the peak above the
    // process's resident memory before the model was allocated.
    const double measured = usage.ru_maxrss / 1024.0 - baseline_mib;
    const double estimate = estimate_training_memory(cfg, 1).total() / (1024.0 * 1024.0);
    j["training_memory_mib"] = measured;
    j["estimate_mib"] = estimate;
    j["estimate_error"] = (estimate - measured) / measured;
    const int64_t device_peak = device_peak_memory(device);
    if (device_peak >= 0) j["peak_device_memory_mib"] = static_cast<double>(device_peak) / (1024.0 * 1024.0);
    const double model_flops = training_flops_per_token(cfg.model, T) * static_cast<double>(B * T) / step_s;
    j["model_tflops_per_second"] = model_flops / 1e12;
    if (peak_size < 0) peak_size = device.is_cuda() ? 8192 : 4096;
    if (peak_size > 0) {
      const double peak = matmul_peak_flops(peak_size, scalar_type(cfg.model.compute_dtype), device);
      j["matmul_peak_tflops_per_second"] = peak / 1e12;
      j["matmul_peak_size"] = peak_size;
      j["mfu"] = model_flops / peak;
    }
    std::cout << j.dump() << std::endl;
  } catch (const c10::Error& e) {
    std::cerr << "error: " << first_line(e.what_without_backtrace()) << std::endl;  // no backtrace
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << first_line(e.what()) << std::endl;
    return 1;
  }
  return 0;
}

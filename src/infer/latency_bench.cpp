#include "infer/latency_bench.h"

#include <ATen/CPUGeneratorImpl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "config/loader.h"
#include "infer/decoder.h"
#include "model/layers.h"
#include "model/weights.h"
#include "util/runtime.h"
#include "util/torch_compat.h"

namespace ttt {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

nlohmann::json to_json(const LatencyResult& r) {
  nlohmann::json j = {{"variant", r.variant},
                      {"context", r.context},
                      {"prefill_seconds", r.prefill_seconds},
                      {"prefill_seconds_per_1k", r.prefill_seconds_per_1k},
                      {"decode_ms_per_token", r.decode_ms_per_token},
                      {"peak_rss_mib", r.peak_rss_mib}};
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

LatencyResult from_json(const nlohmann::json& j) {
  LatencyResult r;
  r.variant = j.at("variant");
  r.context = j.at("context");
  r.prefill_seconds = j.at("prefill_seconds");
  r.prefill_seconds_per_1k = j.at("prefill_seconds_per_1k");
  r.decode_ms_per_token = j.at("decode_ms_per_token");
  r.peak_rss_mib = j.at("peak_rss_mib");
  if (j.contains("error")) r.error = j.at("error");
  return r;
}

const LatencyResult* find(const std::vector<LatencyResult>& results, const std::string& variant, int64_t context) {
  for (const auto& r : results)
    if (r.variant == variant && r.context == context && r.error.empty()) return &r;
  return nullptr;
}

}  // namespace

std::vector<std::pair<std::string, Config>> latency_bench_variants(const std::string& size,
                                                                   const std::vector<std::string>& variants,
                                                                   const std::vector<std::string>& overrides) {
  auto experiment = [&](const std::string& variant) { return size + "/pretrain/pretrain-" + size + "-" + variant; };
  auto load = [&](std::vector<std::string> words) {
    words.insert(words.end(), overrides.begin(), overrides.end());
    return load_config(words);
  };
  std::vector<std::pair<std::string, Config>> out;
  for (const auto& variant : variants) {
    if (variant == "ttt_linear" || variant == "ttt_mlp") {
      // The TTT-layer experiments: ttt-layers/tiny/<variant>, ttt-layers/<variant>/<size> (1b: 1.3b).
      const std::string name = size == "tiny" ? "ttt-layers/tiny/" + variant
                                              : "ttt-layers/" + variant + "/" + (size == "1b" ? "1.3b" : size);
      out.emplace_back(variant, load({"+experiment=" + name}));
      continue;
    }
    if (variant != "fa" && variant != "swa" && variant != "e2e")
      throw ConfigError("unknown bench variant '" + variant + "' (fa, swa, e2e, ttt_linear, ttt_mlp)");
    const auto file = std::filesystem::path(find_config_dir()) / "experiment" / (experiment(variant) + ".yaml");
    if (variant == "swa" && !std::filesystem::exists(file)) {
      // No SWA baseline for this size: the FA model with the E2E model's window.
      const Config e2e = load({"+experiment=" + experiment("e2e")});
      out.emplace_back(variant, load({"+experiment=" + experiment("fa"), "model.seq_modeling_block=SWA",
                                      "model.sliding_window_size=" + std::to_string(e2e.model.sliding_window_size)}));
      continue;
    }
    out.emplace_back(variant, load({"+experiment=" + experiment(variant)}));
  }
  return out;
}

std::vector<int64_t> context_lengths(int64_t min_context, int64_t max_context) {
  std::vector<int64_t> out;
  for (int64_t t = min_context; t <= max_context; t *= 2) out.push_back(t);
  if (out.empty()) out.push_back(max_context);
  return out;
}

LatencyResult measure_latency(const LatencyCase& c) {
  const Config& config = c.config;
  const torch::Device device = setup_runtime(config.backend);
  torch::NoGradGuard no_grad;
  const auto weights = ModelWeights::initialize(config.model, c.seed, scalar_type(config.model.param_dtype), device);
  const auto& cfg = config.model;
  const auto ttt = TttOptions::for_inference(config);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(c.seed + 1);
  auto ids = torch::randint(0, config.model.vocab_size, {1, c.context}, generator, torch::kInt64).to(device);
  ids.select(1, 0).fill_(config.model.bos_token_id);

  // Warm-up on a throwaway state: first-touch allocations and kernel selection.
  {
    DecodeState warm = start_decoding(cfg, ttt, weights);
    read_tokens(cfg, ttt, weights, warm, ids.slice(1, 0, std::min<int64_t>(c.context, 2 * warm.segment)));
  }
  // The machine may be shared: short measurements are repeated and the fastest run counts.
  LatencyResult r;
  r.variant = c.variant;
  r.context = c.context;
  DecodeState prefilled;
  for (int repeat = 0; repeat < 3; ++repeat) {
    DecodeState state = start_decoding(cfg, ttt, weights);
    const auto start = std::chrono::steady_clock::now();
    read_tokens(cfg, ttt, weights, state, ids);
    synchronize(device);
    const double seconds = seconds_since(start);
    if (repeat == 0 || seconds < r.prefill_seconds) r.prefill_seconds = seconds;
    prefilled = state;
    if (seconds > 1.0) break;
  }
  r.prefill_seconds_per_1k = r.prefill_seconds * 1000.0 / c.context;

  // Every repeat decodes from the same prefilled state, so each includes the E2E step of the
  // prompt's last chunk. The copies share cache storage (decoder.h), which is safe here: a repeat
  // writes only slots past the prefilled state's and writes each before it reads it.
  for (int repeat = 0; repeat < 3; ++repeat) {
    DecodeState state = prefilled;
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < c.decode_tokens; ++i)
      read_tokens(cfg, ttt, weights, state, state.last_logits.argmax(-1, /*keepdim=*/true));
    synchronize(device);
    const double ms = seconds_since(start) * 1000.0 / std::max<int64_t>(c.decode_tokens, 1);
    if (repeat == 0 || ms < r.decode_ms_per_token) r.decode_ms_per_token = ms;
  }

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  r.peak_rss_mib = usage.ru_maxrss / 1024.0;
  return r;
}

LatencyResult measure_latency_isolated(const LatencyCase& c) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("bench: cannot create a pipe");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("bench: cannot fork");
  if (pid == 0) {
    close(fds[0]);
    std::string line;
    try {
      line = to_json(measure_latency(c)).dump();
    } catch (const std::exception& e) {
      LatencyResult failed;
      failed.variant = c.variant;
      failed.context = c.context;
      failed.error = e.what();
      line = to_json(failed).dump();
    }
    for (size_t done = 0; done < line.size();) {
      const ssize_t n = write(fds[1], line.data() + done, line.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    close(fds[1]);
    _exit(0);  // no static destructors or atexit handlers of the parent's state
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  LatencyResult r;
  r.variant = c.variant;
  r.context = c.context;
  if (text.empty()) {
    r.error = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status)) + " (out of memory?)"
                                  : "exited without a result";
  } else {
    r = from_json(nlohmann::json::parse(text));
  }
  r.peak_rss_mib = usage.ru_maxrss / 1024.0;  // the child's own peak
  return r;
}

LatencySummary summarize_latency(const std::vector<LatencyResult>& results) {
  LatencySummary s;
  std::set<int64_t> contexts;  // ascending
  for (const auto& r : results)
    if (r.error.empty()) contexts.insert(r.context);
  for (int64_t t : contexts) {
    const auto *fa = find(results, "fa", t), *e2e = find(results, "e2e", t);
    if (fa == nullptr || e2e == nullptr) continue;
    if (!s.crossover_context && e2e->prefill_seconds_per_1k < fa->prefill_seconds_per_1k) s.crossover_context = t;
    s.longest_context = t;
    s.fa_over_e2e.push_back({t, fa->prefill_seconds_per_1k / e2e->prefill_seconds_per_1k,
                             fa->decode_ms_per_token / e2e->decode_ms_per_token});
  }
  if (!s.fa_over_e2e.empty()) {
    s.fa_over_e2e_prefill = s.fa_over_e2e.back().prefill;
    s.fa_over_e2e_decode = s.fa_over_e2e.back().decode;
  }
  std::map<std::string, std::pair<const LatencyResult*, const LatencyResult*>> span;  // shortest, longest
  for (int64_t t : contexts)
    for (const auto& r : results)
      if (r.context == t && r.error.empty()) {
        auto& [shortest, longest] = span[r.variant];
        if (shortest == nullptr) shortest = &r;
        longest = &r;
      }
  for (const auto& [variant, ends] : span)
    if (ends.first != ends.second)
      s.decode_longest_over_shortest[variant] = ends.second->decode_ms_per_token / ends.first->decode_ms_per_token;
  if (const auto e2e = s.decode_longest_over_shortest.find("e2e"); e2e != s.decode_longest_over_shortest.end())
    s.e2e_decode_longest_over_shortest = e2e->second;
  return s;
}

std::string latency_results_json(const std::vector<LatencyResult>& results, const LatencySummary& s) {
  nlohmann::json cases = nlohmann::json::array();
  for (const auto& r : results) cases.push_back(to_json(r));
  auto optional = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  nlohmann::json ratios = nlohmann::json::array();
  for (const auto& r : s.fa_over_e2e)
    ratios.push_back({{"context", r.context}, {"prefill", r.prefill}, {"decode", r.decode}});
  nlohmann::json j = {{"cases", cases},
                      {"fa_over_e2e", ratios},
                      {"crossover_context", optional(s.crossover_context)},
                      {"longest_context", s.longest_context},
                      {"fa_over_e2e_prefill_at_longest", optional(s.fa_over_e2e_prefill)},
                      {"fa_over_e2e_decode_at_longest", optional(s.fa_over_e2e_decode)},
                      {"e2e_decode_longest_over_shortest", optional(s.e2e_decode_longest_over_shortest)},
                      {"decode_longest_over_shortest", s.decode_longest_over_shortest}};
  return j.dump(2);
}

std::vector<LatencyResult> parse_latency_results(const std::string& text, const std::string& source) {
  try {
    const auto j = nlohmann::json::parse(text);
    std::vector<LatencyResult> results;
    for (const auto& c : j.at("cases")) results.push_back(from_json(c));
    return results;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(source + " is not the JSON of `ttt bench --json`: " + e.what());
  }
}

std::string latency_results_table(const std::vector<LatencyResult>& results, const LatencySummary& s) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof(line), "%-10s %9s %11s %12s %15s %14s\n", "variant", "context", "prefill s", "s / 1K tok",
                "decode ms/tok", "peak RSS MiB");
  out << line;
  for (const auto& r : results) {
    if (!r.error.empty()) {
      std::snprintf(line, sizeof(line), "%-10s %9lld  failed: ", r.variant.c_str(), static_cast<long long>(r.context));
      out << line << r.error << "\n";
      continue;
    }
    std::snprintf(line, sizeof(line), "%-10s %9lld %11.3f %12.4f %15.3f %14.0f\n", r.variant.c_str(),
                  static_cast<long long>(r.context), r.prefill_seconds, r.prefill_seconds_per_1k, r.decode_ms_per_token,
                  r.peak_rss_mib);
    out << line;
  }
  out << "\n";
  if (s.crossover_context)
    out << "E2E prefill is faster than FA from context " << *s.crossover_context << "\n";
  else if (s.longest_context > 0)
    out << "E2E prefill is not faster than FA at any measured context (up to " << s.longest_context << ")\n";
  if (s.fa_over_e2e_prefill) {
    std::snprintf(line, sizeof(line), "at context %lld: FA / E2E prefill %.2fx, decode %.2fx\n",
                  static_cast<long long>(s.longest_context), *s.fa_over_e2e_prefill, *s.fa_over_e2e_decode);
    out << line;
  }
  for (const auto& [variant, ratio] : s.decode_longest_over_shortest) {
    std::snprintf(line, sizeof(line), "%s decode ms/token, longest / shortest context: %.2f (flat = 1)\n",
                  variant.c_str(), ratio);
    out << line;
  }
  return out.str();
}

}  // namespace ttt

// Inference latency against context length for the full-attention (FA), sliding-window (SWA),
// TTT-E2E and TTT-layer (ttt_linear, ttt_mlp) variants of one model size: prefill time (seconds per 1K tokens) and
// decode time (ms per token, measured after a prefill of each length), with each case's peak memory. Random weights:
// latency does not depend on what the weights are.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace ttt {

struct LatencyCase {
  std::string variant;  // fa | swa | e2e | ttt_linear | ttt_mlp
  Config config;
  int64_t context = 1024;       // prefill length (tokens, BOS included)
  int64_t decode_tokens = 128;  // tokens decoded after the prefill (one E2E chunk: one inner step)
  uint64_t seed = 0;
};

struct LatencyResult {
  std::string variant;
  int64_t context = 0;
  double prefill_seconds = 0;
  double prefill_seconds_per_1k = 0;
  double decode_ms_per_token = 0;
  double peak_rss_mib = 0;  // of the process that ran the case
  std::string error;        // set when the case failed (e.g. killed for memory)
};

// The configurations of the requested variants for `size` (tiny, 125m, ...):
// +experiment=<size>/pretrain/pretrain-<size>-<variant>, then `overrides`. A size without an SWA
// experiment gets its FA configuration with the E2E model's sliding window. ttt_linear and
// ttt_mlp are the TTT-layer experiments: ttt-layers/tiny/<variant>, ttt-layers/<variant>/<size>.
std::vector<std::pair<std::string, Config>> latency_bench_variants(const std::string& size,
                                                                   const std::vector<std::string>& variants,
                                                                   const std::vector<std::string>& overrides);

// 1024, 2048, ... up to max_context (at least one length).
std::vector<int64_t> context_lengths(int64_t min_context, int64_t max_context);

// Runs one case in this process.
LatencyResult measure_latency(const LatencyCase& c);

// Runs one case in a forked child, so that its peak memory is its own; the parent must not have
// run torch operations (their thread pools do not survive fork).
LatencyResult measure_latency_isolated(const LatencyCase& c);

// Full attention's time over TTT-E2E's at one context (above 1: E2E is faster).
struct FaOverE2e {
  int64_t context = 0;
  double prefill = 0;
  double decode = 0;
};

struct LatencySummary {
  std::vector<FaOverE2e> fa_over_e2e;         // every context where both ran, ascending
  std::optional<int64_t> crossover_context;   // shortest context where E2E prefill is faster than FA
  std::optional<double> fa_over_e2e_prefill;  // at the longest context both ran
  std::optional<double> fa_over_e2e_decode;
  std::optional<double> e2e_decode_longest_over_shortest;  // ~1 when decoding is flat in context
  // Every variant measured at two or more contexts: its decode ms/token at the longest context
  // over that at the shortest (TTT layers, SWA and E2E are flat; full attention grows).
  std::map<std::string, double> decode_longest_over_shortest;
  int64_t longest_context = 0;
};
LatencySummary summarize_latency(const std::vector<LatencyResult>& results);

std::string latency_results_json(const std::vector<LatencyResult>& results, const LatencySummary& summary);
// The cases of a document latency_results_json wrote (`ttt bench --json`, saved to a file). Throws
// std::runtime_error naming `source` when the text is not one.
std::vector<LatencyResult> parse_latency_results(const std::string& text, const std::string& source);
std::string latency_results_table(const std::vector<LatencyResult>& results, const LatencySummary& summary);

}  // namespace ttt

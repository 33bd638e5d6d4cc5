// `ttt bench`'s curves as SVG plots: prefill and decode time against context for every variant,
// and full attention over TTT-E2E beside the paper's prefill ratio.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "infer/latency_bench.h"

namespace ttt {

struct ContextRatio {
  int64_t context = 0;
  double ratio = 0;
};

// The paper's prefill time of full attention over TTT-E2E (arXiv 2512.23675 v2, 3B model, one
// H100): 0.016 / 0.0253 s per 1K tokens at 8K, 0.0735 / 0.0275 at 128K, and 1 at 32K, where the
// paper says the two are level (its figure, not a number it states).
const std::vector<ContextRatio>& paper_fa_over_e2e_prefill();

// Results of several runs as one set: a case (variant, context) measured in more than one keeps
// the later run's successful result (a failure only where no run succeeded). Sorted by variant (fa, swa, e2e,
// ttt_linear, ttt_mlp, then any other by name), then context.
std::vector<LatencyResult> merge_latency_results(const std::vector<std::vector<LatencyResult>>& runs);

// Writes into `dir` (created if missing), each file beside and renamed:
//   latency_prefill.svg   prefill seconds per 1K tokens against context, one curve per variant;
//   latency_decode.svg    decode ms per token against context;
//   latency_fa_over_e2e.svg  (when FA and E2E ran at a common context, else removed) our FA / E2E
//                         prefill and decode ratios, beside the paper's prefill ratio.
// Failed cases are left out; a variant keeps its colour whichever others ran. Returns the paths written; throws
// std::runtime_error when no case succeeded.
std::vector<std::string> write_latency_plots(const std::string& dir, const std::vector<LatencyResult>& results);

}  // namespace ttt

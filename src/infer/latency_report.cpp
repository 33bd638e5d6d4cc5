#include "infer/latency_report.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "report/plot.h"

namespace ttt {
namespace {

// The variants in the order of `ttt bench --variants`' help, with the names the paper and docs
// use, for the legends: a variant keeps its colour whichever others a plot has.
const std::vector<std::pair<std::string, std::string>>& known_variants() {
  static const std::vector<std::pair<std::string, std::string>> variants = {{"fa", "full attention"},
                                                                            {"swa", "SWA"},
                                                                            {"e2e", "TTT-E2E"},
                                                                            {"ttt_linear", "TTT-Linear"},
                                                                            {"ttt_mlp", "TTT-MLP"}};
  return variants;
}

size_t variant_rank(const std::string& variant) {
  const auto& known = known_variants();
  return std::find_if(known.begin(), known.end(), [&](const auto& v) { return v.first == variant; }) - known.begin();
}

std::string display_name(const std::string& variant) {
  const size_t rank = variant_rank(variant);
  return rank < known_variants().size() ? known_variants()[rank].second : variant;
}

// One series per variant, in the order of `results`.
std::vector<Series> per_variant(const std::vector<LatencyResult>& results, double (*value)(const LatencyResult&)) {
  std::vector<Series> series;
  std::map<std::string, size_t> index;
  for (const auto& r : results) {
    if (!r.error.empty()) continue;
    const auto [it, added] = index.emplace(r.variant, series.size());
    if (added) series.push_back({display_name(r.variant), {}, {}});
    series[it->second].x.push_back(static_cast<double>(r.context));
    series[it->second].y.push_back(value(r));
  }
  return series;
}

PlotOptions latency_options(const std::string& title, const std::string& y_label) {
  PlotOptions options;
  options.title = title;
  options.x_label = "context (tokens)";
  options.y_label = y_label;
  options.log_x = true;
  options.max_points = 0;
  options.markers = true;
  options.legend_upper_left = true;
  return options;
}

}  // namespace

const std::vector<ContextRatio>& paper_fa_over_e2e_prefill() {
  static const std::vector<ContextRatio> points = {{8192, 0.016 / 0.0253}, {32768, 1.0}, {131072, 0.0735 / 0.0275}};
  return points;
}

std::vector<LatencyResult> merge_latency_results(const std::vector<std::vector<LatencyResult>>& runs) {
  // Keyed by (rank, name): known variants in their order, others after them by name.
  std::map<std::tuple<size_t, std::string, int64_t>, LatencyResult> cases;
  for (const auto& run : runs)
    for (const auto& r : run) {
      auto [it, added] = cases.try_emplace({variant_rank(r.variant), r.variant, r.context}, r);
      // A later failure (a rerun killed for memory) does not replace an earlier measurement.
      if (!added && (r.error.empty() || !it->second.error.empty())) it->second = r;
    }
  std::vector<LatencyResult> merged;
  for (auto& [key, r] : cases) merged.push_back(std::move(r));
  return merged;
}

std::vector<std::string> write_latency_plots(const std::string& dir, const std::vector<LatencyResult>& measured) {
  const auto results = merge_latency_results({measured});
  const auto prefill = per_variant(results, [](const LatencyResult& r) { return r.prefill_seconds_per_1k; });
  if (prefill.empty()) throw std::runtime_error("no latency case succeeded: nothing to plot");
  const auto decode = per_variant(results, [](const LatencyResult& r) { return r.decode_ms_per_token; });

  std::filesystem::create_directories(dir);
  const std::filesystem::path d(dir);
  std::vector<std::string> written;
  auto write = [&](const std::string& name, const std::vector<Series>& series, const PlotOptions& options) {
    const std::string path = (d / name).string();
    write_line_plot_svg(path, series, options);
    written.push_back(path);
  };
  write("latency_prefill.svg", prefill, latency_options("Prefill time against context", "seconds per 1K tokens"));
  write("latency_decode.svg", decode,
        latency_options("Decode time against context (after a prefill of that length)", "ms per token"));

  Series ours_prefill{"ours: prefill", {}, {}}, ours_decode{"ours: decode", {}, {}};
  for (const auto& r : summarize_latency(results).fa_over_e2e) {
    ours_prefill.x.push_back(static_cast<double>(r.context));
    ours_prefill.y.push_back(r.prefill);
    ours_decode.x.push_back(static_cast<double>(r.context));
    ours_decode.y.push_back(r.decode);
  }
  const std::string ratio_path = (d / "latency_fa_over_e2e.svg").string();
  if (ours_prefill.x.empty()) {
    std::filesystem::remove(ratio_path);  // an earlier run's would no longer match the other two
  } else {
    Series paper{"paper (3B, H100): prefill, 32K as level", {}, {}};
    for (const auto& p : paper_fa_over_e2e_prefill()) {
      paper.x.push_back(static_cast<double>(p.context));
      paper.y.push_back(p.ratio);
    }
    write("latency_fa_over_e2e.svg", {ours_prefill, ours_decode, paper},
          latency_options("Full attention over TTT-E2E (above 1: TTT-E2E is faster)", "time ratio FA / TTT-E2E"));
  }
  return written;
}

}  // namespace ttt

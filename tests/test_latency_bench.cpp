// `ttt bench` (infer/latency_bench, infer/latency_report): the summary of FA against TTT-E2E,
// the saved JSON read back, several runs merged, the latency plots, and a real measurement of
// the tiny models.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "config/loader.h"
#include "infer/latency_bench.h"
#include "infer/latency_report.h"
#include "support/test_util.h"
#include "util/file_io.h"

using namespace ttt;
using ttt::testing::expect_one_line_error;
using ttt::testing::fresh_temp_dir;

namespace {

LatencyResult result(const std::string& variant, int64_t context, double prefill_per_1k, double decode_ms) {
  LatencyResult r;
  r.variant = variant;
  r.context = context;
  r.prefill_seconds_per_1k = prefill_per_1k;
  r.prefill_seconds = prefill_per_1k * static_cast<double>(context) / 1000.0;
  r.decode_ms_per_token = decode_ms;
  r.peak_rss_mib = 100.0 + static_cast<double>(context) / 1024.0;
  return r;
}

LatencyResult failed(const std::string& variant, int64_t context) {
  LatencyResult r;
  r.variant = variant;
  r.context = context;
  r.error = "killed by signal 9 (out of memory?)";
  return r;
}

// FA grows with the context, E2E is flat: E2E prefill is faster from 4K on.
std::vector<LatencyResult> typical_run() {
  return {result("fa", 2048, 0.08, 1.8), result("swa", 2048, 0.10, 1.7), result("e2e", 2048, 0.16, 1.5),
          result("fa", 4096, 0.13, 3.2), result("swa", 4096, 0.11, 1.5), result("e2e", 4096, 0.12, 1.4),
          result("fa", 8192, 0.27, 4.2), result("swa", 8192, 0.08, 1.3), result("e2e", 8192, 0.10, 1.4),
          failed("fa", 16384),           result("e2e", 16384, 0.10, 1.5)};
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(LatencyBench, SummaryComparesFaWithE2eWhereBothRan) {
  const auto s = summarize_latency(typical_run());
  ASSERT_EQ(s.fa_over_e2e.size(), 3u);  // the failed FA case at 16K has no ratio
  EXPECT_EQ(s.fa_over_e2e[0].context, 2048);
  EXPECT_DOUBLE_EQ(s.fa_over_e2e[0].prefill, 0.08 / 0.16);
  EXPECT_DOUBLE_EQ(s.fa_over_e2e[2].decode, 4.2 / 1.4);
  ASSERT_TRUE(s.crossover_context);
  EXPECT_EQ(*s.crossover_context, 4096);
  EXPECT_EQ(s.longest_context, 8192);
  EXPECT_DOUBLE_EQ(*s.fa_over_e2e_prefill, 0.27 / 0.10);
  EXPECT_DOUBLE_EQ(*s.fa_over_e2e_decode, 4.2 / 1.4);
  // Decoding from the shortest to the longest context each variant ran at: FA to 8K, E2E to 16K.
  EXPECT_DOUBLE_EQ(s.decode_longest_over_shortest.at("fa"), 4.2 / 1.8);
  EXPECT_DOUBLE_EQ(*s.e2e_decode_longest_over_shortest, 1.5 / 1.5);
}

TEST(LatencyBench, NoCrossoverWhenE2eIsNeverFaster) {
  const auto s = summarize_latency({result("fa", 1024, 0.05, 1.1), result("e2e", 1024, 0.12, 1.5)});
  EXPECT_FALSE(s.crossover_context);
  EXPECT_EQ(s.longest_context, 1024);
  EXPECT_TRUE(summarize_latency({result("swa", 1024, 0.1, 1.0)}).fa_over_e2e.empty());
}

TEST(LatencyBench, SavedJsonReadsBackEveryCase) {
  const auto run = typical_run();
  const auto back = parse_latency_results(latency_results_json(run, summarize_latency(run)), "run.json");
  ASSERT_EQ(back.size(), run.size());
  for (size_t i = 0; i < run.size(); ++i) {
    EXPECT_EQ(back[i].variant, run[i].variant);
    EXPECT_EQ(back[i].context, run[i].context);
    EXPECT_EQ(back[i].prefill_seconds, run[i].prefill_seconds);
    EXPECT_EQ(back[i].prefill_seconds_per_1k, run[i].prefill_seconds_per_1k);
    EXPECT_EQ(back[i].decode_ms_per_token, run[i].decode_ms_per_token);
    EXPECT_EQ(back[i].peak_rss_mib, run[i].peak_rss_mib);
    EXPECT_EQ(back[i].error, run[i].error);
  }
}

TEST(LatencyBench, TextThatIsNotBenchJsonIsAOneLineErrorNamingTheFile) {
  expect_one_line_error([] { parse_latency_results("variant,context\nfa,1024\n", "table.csv"); }, {"table.csv"});
  expect_one_line_error([] { parse_latency_results(R"({"runs": []})", "other.json"); }, {"other.json", "cases"});
  expect_one_line_error([] { parse_latency_results(R"({"cases": [{"variant": "fa", "context": "8K"}]})", "x.json"); },
                        {"x.json"});
}

TEST(LatencyBench, MergedRunsKeepTheLaterCaseInVariantOrder) {
  const std::vector<LatencyResult> first = {result("e2e", 4096, 0.12, 1.4), result("fa", 4096, 0.13, 3.2),
                                            result("custom", 4096, 1.0, 1.0)};
  const std::vector<LatencyResult> second = {result("fa", 65536, 2.0, 29.0), result("e2e", 4096, 0.11, 1.3),
                                             result("ttt_mlp", 4096, 0.3, 2.0)};
  const auto merged = merge_latency_results({first, second});
  std::vector<std::pair<std::string, int64_t>> keys;
  for (const auto& r : merged) keys.emplace_back(r.variant, r.context);
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"fa", 4096}, {"fa", 65536}, {"e2e", 4096}, {"ttt_mlp", 4096}, {"custom", 4096}};
  EXPECT_EQ(keys, expected);
  EXPECT_DOUBLE_EQ(merged[2].prefill_seconds_per_1k, 0.11);  // the second run's E2E at 4K
  // A later failure keeps the earlier measurement; a later success replaces an earlier failure.
  const auto kept = merge_latency_results(
      {{result("fa", 8192, 0.27, 4.2), failed("e2e", 8192)}, {failed("fa", 8192), result("e2e", 8192, 0.10, 1.4)}});
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_TRUE(kept[0].error.empty());
  EXPECT_DOUBLE_EQ(kept[0].prefill_seconds_per_1k, 0.27);
  EXPECT_TRUE(kept[1].error.empty());
  EXPECT_DOUBLE_EQ(kept[1].prefill_seconds_per_1k, 0.10);
}

TEST(LatencyBench, PlotsDrawEveryVariantAndTheRatioBesideThePaper) {
  const auto dir = fresh_temp_dir("latency_plots");
  const auto written = write_latency_plots((dir / "plots").string(), typical_run());
  ASSERT_EQ(written.size(), 3u);
  const auto prefill = read_file((dir / "plots" / "latency_prefill.svg").string());
  // One curve per variant, a dot per successful case (10 of 11), legends in bench order.
  EXPECT_EQ(count(prefill, "<polyline"), 3u);
  EXPECT_EQ(count(prefill, "<circle"), 10u);
  const auto fa = prefill.find(">full attention<"), swa = prefill.find(">SWA<"), e2e = prefill.find(">TTT-E2E<");
  ASSERT_NE(fa, std::string::npos);
  ASSERT_NE(swa, std::string::npos);
  ASSERT_NE(e2e, std::string::npos);
  EXPECT_LT(fa, swa);
  EXPECT_LT(swa, e2e);
  EXPECT_NE(prefill.find(">8K<"), std::string::npos);  // log-x ticks at powers of two
  EXPECT_TRUE(std::filesystem::exists(dir / "plots" / "latency_decode.svg"));

  const auto ratio = read_file((dir / "plots" / "latency_fa_over_e2e.svg").string());
  EXPECT_EQ(count(ratio, "<polyline"), 3u);
  EXPECT_EQ(count(ratio, "<circle"), 3u + 3u + paper_fa_over_e2e_prefill().size());
  EXPECT_NE(ratio.find("paper (3B, H100)"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(LatencyBench, PaperRatioCrossesOneAsTheFigureDoes) {
  const auto& paper = paper_fa_over_e2e_prefill();
  ASSERT_EQ(paper.size(), 3u);
  EXPECT_LT(paper.front().ratio, 1.0);  // TTT-E2E about 1.6x slower at 8K
  EXPECT_NEAR(paper.front().ratio, 1 / 1.6, 0.02);
  EXPECT_GT(paper.back().ratio, 2.6);  // 2.7x faster at 128K
  EXPECT_EQ(paper.back().context, 131072);
}

TEST(LatencyBench, PlotsWithoutFaOrWithoutAnySuccessfulCase) {
  const auto dir = fresh_temp_dir("latency_plots_partial");
  write_latency_plots(dir.string(), typical_run());
  ASSERT_TRUE(std::filesystem::exists(dir / "latency_fa_over_e2e.svg"));
  // Plotting a run without FA into the same directory removes the ratio plot it cannot redraw.
  const auto written =
      write_latency_plots(dir.string(), {result("swa", 1024, 0.1, 1.3), result("e2e", 1024, 0.12, 1.4)});
  EXPECT_EQ(written.size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(dir / "latency_fa_over_e2e.svg"));
  expect_one_line_error([&] { write_latency_plots((dir / "none").string(), {failed("fa", 1024)}); },
                        {"no latency case succeeded"});
  EXPECT_FALSE(std::filesystem::exists(dir / "none" / "latency_prefill.svg"));
  std::filesystem::remove_all(dir);
}

// The measurement itself, on the tiny models at a short context: every variant prefills and
// decodes, and the times are what the result says they are.
TEST(LatencyBench, MeasuresTheTinyModelsPrefillAndDecode) {
  for (const auto& [variant, config] : latency_bench_variants("tiny", {"fa", "swa", "e2e"}, {})) {
    const auto r = measure_latency(LatencyCase{variant, config, 512, 8, 0});
    EXPECT_TRUE(r.error.empty()) << variant << ": " << r.error;
    EXPECT_EQ(r.variant, variant);
    EXPECT_EQ(r.context, 512);
    EXPECT_GT(r.prefill_seconds, 0) << variant;
    EXPECT_DOUBLE_EQ(r.prefill_seconds_per_1k, r.prefill_seconds * 1000.0 / 512) << variant;
    EXPECT_GT(r.decode_ms_per_token, 0) << variant;
    EXPECT_TRUE(std::isfinite(r.decode_ms_per_token)) << variant;
    EXPECT_GT(r.peak_rss_mib, 0) << variant;
  }
}

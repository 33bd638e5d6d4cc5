// SVG plots and run-directory readers: tick choice, binning, the SVG's structure, and the files
// `ttt plot` reads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "report/heatmap.h"
#include "report/plot.h"
#include "report/plot_scale.h"
#include "report/position_bins.h"
#include "report/run_summary.h"

namespace fs = std::filesystem;
using ttt::PlotOptions;
using ttt::Series;
using ttt::report::Point;
using ttt::report::Tick;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A fresh directory per test, removed afterwards.
class PlotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("ttt_test_plot_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Empty when every tag is closed in order, one root <svg> holds everything, and every '&' starts
// one of XML's predefined entities; else what is wrong. Attribute values never hold '>' here
// because the writer escapes them.
std::string xml_problem(const std::string& xml) {
  std::vector<std::string> open;
  int roots = 0;
  std::size_t at = 0;
  while ((at = xml.find('<', at)) != std::string::npos) {
    const std::size_t end = xml.find('>', at);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(at);
    const std::string tag = xml.substr(at + 1, end - at - 1);
    at = end + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '?' || tag[0] == '!') continue;
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return "unexpected </" + tag.substr(1) + ">";
      open.pop_back();
      continue;
    }
    if (open.empty() && ++roots > 1) return "more than one root element";
    if (tag.back() == '/') continue;
    open.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  for (std::size_t amp = xml.find('&'); amp != std::string::npos; amp = xml.find('&', amp + 1)) {
    bool known = false;
    for (const char* entity : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
      known = known || xml.compare(amp, std::strlen(entity), entity) == 0;
    if (!known) return "unescaped & at " + std::to_string(amp);
  }
  return "";
}

// The value of attribute `name` in every element `<element ...>`, in document order. (Plain
// string search: std::regex recurses per character and overflows on long point lists.)
std::vector<std::string> attribute_values(const std::string& svg, const std::string& element, const std::string& name) {
  std::vector<std::string> found;
  const std::string open = "<" + element + " ", key = " " + name + "=\"";
  for (std::size_t at = svg.find(open); at != std::string::npos; at = svg.find(open, at + 1)) {
    const std::size_t end = svg.find('>', at);
    const std::size_t value = svg.find(key, at);
    if (value == std::string::npos || value > end) continue;
    const std::size_t begin = value + key.size();
    found.push_back(svg.substr(begin, svg.find('"', begin) - begin));
  }
  return found;
}

// Number of "x,y" pairs in each <polyline points="...">, in document order.
std::vector<int> polyline_point_counts(const std::string& svg) {
  std::vector<int> counts;
  for (const auto& points : attribute_values(svg, "polyline", "points")) {
    std::istringstream pairs(points);
    std::string pair;
    int count = 0;
    while (pairs >> pair) {
      EXPECT_NE(pair.find(','), std::string::npos) << pair;
      ++count;
    }
    counts.push_back(count);
  }
  return counts;
}

// The text of every <text> element.
std::vector<std::string> texts(const std::string& svg) {
  std::vector<std::string> found;
  for (std::size_t at = svg.find("<text "); at != std::string::npos; at = svg.find("<text ", at + 1)) {
    const std::size_t begin = svg.find('>', at) + 1;
    found.push_back(svg.substr(begin, svg.find("</text>", begin) - begin));
  }
  return found;
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

Series make_series(const std::string& label, int n, double x0 = 0) {
  Series s{label, {}, {}};
  for (int i = 0; i < n; ++i) {
    s.x.push_back(x0 + i);
    s.y.push_back(3.0 - 0.001 * i);
  }
  return s;
}

std::vector<double> values(const std::vector<Tick>& ticks) {
  std::vector<double> v;
  for (const auto& t : ticks) v.push_back(t.value);
  return v;
}

std::vector<std::string> labels(const std::vector<Tick>& ticks) {
  std::vector<std::string> v;
  for (const auto& t : ticks) v.push_back(t.label);
  return v;
}

}  // namespace

TEST(PlotScale, LinearTicksUseOneTwoFiveSteps) {
  const auto unit = ttt::report::linear_ticks(0, 1, 6);
  EXPECT_EQ(values(unit), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_EQ(labels(unit), (std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}));

  EXPECT_EQ(values(ttt::report::linear_ticks(0, 100, 6)), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  EXPECT_EQ(values(ttt::report::linear_ticks(2.37, 2.91, 6)), (std::vector<double>{2.4, 2.5, 2.6, 2.7, 2.8, 2.9}));
  EXPECT_EQ(values(ttt::report::linear_ticks(0, 1000, 3)), (std::vector<double>{0, 500, 1000}));
  EXPECT_EQ(values(ttt::report::linear_ticks(0.0031, 0.0071, 5)), (std::vector<double>{0.004, 0.005, 0.006, 0.007}));
  EXPECT_EQ(labels(ttt::report::linear_ticks(0.0031, 0.0071, 5)),
            (std::vector<std::string>{"0.004", "0.005", "0.006", "0.007"}));
  // A range across zero: no "-0" label.
  const auto signed_ticks = ttt::report::linear_ticks(-3, 7, 6);
  EXPECT_EQ(values(signed_ticks), (std::vector<double>{-2, 0, 2, 4, 6}));
  EXPECT_TRUE(contains(labels(signed_ticks), "0"));
}

TEST(PlotScale, LinearTicksStayInRangeAndWithinCount) {
  for (const auto& [lo, hi] :
       std::vector<std::pair<double, double>>{{0.1, 0.13}, {-7.5, 1e5}, {1e-9, 3e-9}, {42, 43}}) {
    for (int max_ticks : {2, 5, 9}) {
      const auto ticks = ttt::report::linear_ticks(lo, hi, max_ticks);
      ASSERT_FALSE(ticks.empty()) << lo << ".." << hi;
      EXPECT_LE(static_cast<int>(ticks.size()), max_ticks) << lo << ".." << hi;
      for (const auto& t : ticks) {
        EXPECT_GE(t.value, lo - 1e-12 * std::fabs(hi - lo));
        EXPECT_LE(t.value, hi + 1e-12 * std::fabs(hi - lo));
      }
    }
  }
}

TEST(PlotScale, LogTicksArePowersOfTwoForTokenPositions) {
  const auto all = ttt::report::log_ticks(1, 131072, 18);
  ASSERT_EQ(all.size(), 18u);
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].value, std::ldexp(1.0, static_cast<int>(i)));
  EXPECT_EQ(all.front().label, "1");
  EXPECT_EQ(all[9].label, "512");
  EXPECT_EQ(all[10].label, "1K");
  EXPECT_EQ(all.back().label, "128K");

  // Too many to label: every second exponent, keeping 1.
  const auto sparse = ttt::report::log_ticks(1, 131072, 9);
  EXPECT_EQ(labels(sparse), (std::vector<std::string>{"1", "4", "16", "64", "256", "1K", "4K", "16K", "64K"}));
  EXPECT_EQ(ttt::report::log_ticks(1, 4194304, 30).back().label, "4M");
}

TEST(PlotScale, LogTicksArePowersOfTenForWideRanges) {
  const auto ticks = ttt::report::log_ticks(0.5, 2e9, 12);
  EXPECT_EQ(values(ticks), (std::vector<double>{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}));
  EXPECT_EQ(ticks[2].label, "100");
  EXPECT_TRUE(ttt::report::log_ticks(0, 10, 5).empty());  // no log axis through 0
}

TEST(PlotScale, BinningAveragesConsecutiveXRanges) {
  const std::vector<Point> points{{1, 10}, {2, 20}, {3, 30}, {4, 50}, {5, 70}, {6, 80}};
  const auto binned = ttt::report::bin_points(points, 3, false);
  ASSERT_EQ(binned.size(), 3u);
  EXPECT_DOUBLE_EQ(binned[0].x, 1.5);
  EXPECT_DOUBLE_EQ(binned[0].y, 15);
  EXPECT_DOUBLE_EQ(binned[1].x, 3.5);
  EXPECT_DOUBLE_EQ(binned[1].y, 40);
  EXPECT_DOUBLE_EQ(binned[2].x, 5.5);
  EXPECT_DOUBLE_EQ(binned[2].y, 75);

  // Few enough points, or binning off: unchanged.
  EXPECT_EQ(ttt::report::bin_points(points, 6, false).size(), 6u);
  EXPECT_EQ(ttt::report::bin_points(points, 0, false).size(), 6u);
  // All at one x: one bin.
  const auto same_x = ttt::report::bin_points({{2, 1}, {2, 2}, {2, 6}}, 2, false);
  ASSERT_EQ(same_x.size(), 1u);
  EXPECT_DOUBLE_EQ(same_x[0].y, 3);
}

TEST(PlotScale, LogBinningIsEqualWidthInLogX) {
  // Bins [1,2), [2,4), [4,8] in log space: 1 alone, 2 and 3, then 4..8.
  std::vector<Point> points;
  for (int x = 1; x <= 8; ++x) points.push_back({static_cast<double>(x), static_cast<double>(x)});
  const auto binned = ttt::report::bin_points(points, 3, true);
  ASSERT_EQ(binned.size(), 3u);
  EXPECT_DOUBLE_EQ(binned[0].x, 1);
  EXPECT_DOUBLE_EQ(binned[0].y, 1);
  EXPECT_NEAR(binned[1].x, std::sqrt(6.0), 1e-12);  // geometric mean: the centre on a log axis
  EXPECT_DOUBLE_EQ(binned[1].y, 2.5);
  EXPECT_NEAR(binned[2].x, std::pow(4.0 * 5 * 6 * 7 * 8, 0.2), 1e-12);
  EXPECT_DOUBLE_EQ(binned[2].y, 6);
}

TEST(PlotScale, DrawablePointsSkipNonFinite) {
  const std::vector<double> x{0, 1, 2, 3, 4, kNaN};
  const std::vector<double> y{1, kNaN, 3, kInf, 5, 6};
  const auto linear = ttt::report::drawable_points(x, y, false);
  ASSERT_EQ(linear.size(), 3u);
  EXPECT_EQ(linear[0].x, 0);
  EXPECT_EQ(linear[1].x, 2);
  EXPECT_EQ(linear[2].x, 4);
  EXPECT_EQ(ttt::report::drawable_points(x, y, true).size(), 2u);  // x = 0 has no log
}

TEST_F(PlotTest, SvgHasOnePolylinePerSeriesAfterBinning) {
  PlotOptions options;
  options.title = "Loss by token position";
  options.x_label = "token position";
  options.y_label = "mean NLL";
  options.max_points = 100;
  write_line_plot_svg(path("plot.svg"), {make_series("e2e", 1000), make_series("swa", 10)}, options);
  const std::string svg = read_text(path("plot.svg"));
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_EQ(polyline_point_counts(svg), (std::vector<int>{100, 10}));
  const auto text = texts(svg);
  for (const char* expected : {"Loss by token position", "token position", "mean NLL", "e2e", "swa"})
    EXPECT_TRUE(contains(text, expected)) << expected;
  // Linear x over 0..999: 1-2-5 ticks that include 0.
  EXPECT_TRUE(contains(text, "0"));
  // Distinct colours.
  const auto colours = attribute_values(svg, "polyline", "stroke");
  ASSERT_EQ(colours.size(), 2u);
  EXPECT_NE(colours[0], colours[1]);
  // Written via a temporary that is gone.
  for (const auto& entry : fs::directory_iterator(dir_)) EXPECT_EQ(entry.path().filename(), "plot.svg");
}

TEST_F(PlotTest, LabelsAreEscaped) {
  PlotOptions options;
  options.title = "E2E <vs> SWA & FA";
  write_line_plot_svg(path("plot.svg"), {make_series("a<b>&\"c\"", 5)}, options);
  const std::string svg = read_text(path("plot.svg"));
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_TRUE(contains(texts(svg), "a&lt;b&gt;&amp;&quot;c&quot;"));
  EXPECT_TRUE(contains(texts(svg), "E2E &lt;vs&gt; SWA &amp; FA"));
  EXPECT_EQ(svg.find("a<b>"), std::string::npos);
}

TEST_F(PlotTest, NonFinitePointsAreSkipped) {
  Series series = make_series("run", 10);
  series.y[2] = kNaN;
  series.y[5] = kInf;
  series.x[7] = -kInf;
  write_line_plot_svg(path("plot.svg"), {series, {"all-nan", {1, 2}, {kNaN, kNaN}}}, PlotOptions{});
  const std::string svg = read_text(path("plot.svg"));
  // The all-NaN series is dropped, legend included.
  EXPECT_EQ(polyline_point_counts(svg), (std::vector<int>{7}));
  EXPECT_FALSE(contains(texts(svg), "all-nan"));
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST_F(PlotTest, LogXPlotOfLongContextIsBinnedWithPowerTicks) {
  Series series{"e2e", {}, {}};
  for (int position = 1; position <= 131072; ++position) {
    series.x.push_back(position);
    series.y.push_back(2.0 + 1.0 / std::sqrt(position));
  }
  PlotOptions options;
  options.log_x = true;
  write_line_plot_svg(path("plot.svg"), {series}, options);
  const std::string svg = read_text(path("plot.svg"));
  EXPECT_EQ(xml_problem(svg), "");
  const auto counts = polyline_point_counts(svg);
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_LE(counts[0], options.max_points);
  EXPECT_GT(counts[0], options.max_points / 2);  // the first bins hold single positions, some are empty
  const auto text = texts(svg);
  for (const char* expected : {"1", "4", "1K", "64K"}) EXPECT_TRUE(contains(text, expected)) << expected;
  EXPECT_LT(svg.size(), 200000u);
}

TEST_F(PlotTest, SinglePointAndFlatSeriesStillPlot) {
  write_line_plot_svg(path("plot.svg"), {{"one", {5}, {2.5}}, {"flat", {1, 2, 3}, {2.5, 2.5, 2.5}}}, PlotOptions{});
  const std::string svg = read_text(path("plot.svg"));
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(polyline_point_counts(svg), (std::vector<int>{1, 3}));
  EXPECT_NE(svg.find("<circle"), std::string::npos);
}

TEST_F(PlotTest, NothingToPlotIsAnError) {
  EXPECT_THROW(write_line_plot_svg(path("a.svg"), {}, PlotOptions{}), std::runtime_error);
  EXPECT_THROW(write_line_plot_svg(path("b.svg"), {{"empty", {}, {}}}, PlotOptions{}), std::runtime_error);
  EXPECT_THROW(write_line_plot_svg(path("c.svg"), {{"bad", {1, 2}, {1}}}, PlotOptions{}), std::runtime_error);
  EXPECT_THROW(write_line_plot_svg(path("missing-dir/d.svg"), {make_series("x", 3)}, PlotOptions{}),
               std::runtime_error);
  EXPECT_TRUE(fs::is_empty(dir_));  // no files, no temporaries
}

TEST_F(PlotTest, ReadsEvalJson) {
  write_text(dir_ / "runs" / "e2e" / "eval.json",
             R"({"split":"val","loss":2.5,"num_sequences":4,"nll_by_position":[4,3,null,2,2,1,1,1]})");
  for (const std::string run : {path("runs/e2e"), path("runs/e2e/"), path("runs/./e2e")}) {
    const Series series = ttt::read_eval_series(run);
    EXPECT_EQ(series.label, "e2e") << run;
    ASSERT_EQ(series.x.size(), 8u);
    EXPECT_EQ(series.x.front(), 1);  // positions count from 1
    EXPECT_EQ(series.x.back(), 8);
    EXPECT_TRUE(std::isnan(series.y[2]));
    EXPECT_EQ(series.y[3], 2);
  }
  const auto summary = ttt::report::read_eval_summary(path("runs/e2e"));
  EXPECT_EQ(summary.run, "e2e");
  EXPECT_DOUBLE_EQ(summary.loss, 2.5);
  EXPECT_EQ(summary.num_sequences, 4);
  EXPECT_DOUBLE_EQ(summary.first_quarter_nll, 3.5);  // positions 1-2
  EXPECT_DOUBLE_EQ(summary.last_quarter_nll, 1);     // positions 7-8
  const std::string table = ttt::report::eval_summary_table({summary});
  EXPECT_NE(table.find("| run | eval loss |"), std::string::npos);
  EXPECT_NE(table.find("| e2e | 2.5000 | 3.5000 | 1.0000 |"), std::string::npos) << table;
}

TEST(PositionBins, OneBinPerOctaveIsThePowersOfTwo) {
  const auto bins = ttt::report::log_position_bins({1, 2, 4, 6, 8, 10, 12, 14, 5}, 1);
  ASSERT_EQ(bins.size(), 4u);
  const std::vector<std::pair<int64_t, int64_t>> spans = {{1, 1}, {2, 3}, {4, 7}, {8, 9}};
  const std::vector<double> means = {1, 3, 9, 9.5};
  for (size_t i = 0; i < bins.size(); ++i) {
    EXPECT_EQ(bins[i].first, spans[i].first) << i;
    EXPECT_EQ(bins[i].last, spans[i].second) << i;
    EXPECT_DOUBLE_EQ(bins[i].mean, means[i]) << i;
    EXPECT_EQ(bins[i].count, bins[i].last - bins[i].first + 1) << i;
  }
}

TEST(PositionBins, BinsTileThePositionsAtTheirLogEdges) {
  for (int k : {1, 3, 8, 16}) {
    std::vector<double> values(70000);
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i % 7);
    const auto bins = ttt::report::log_position_bins(values, k);
    int64_t next = 1, previous_index = -1;
    double total = 0;
    for (const auto& bin : bins) {
      ASSERT_EQ(bin.first, next) << "k " << k;  // consecutive, nothing skipped or repeated
      ASSERT_LE(bin.first, bin.last);
      next = bin.last + 1;
      // Every position of the bin lies in [2^(i/k), 2^((i+1)/k)), checked in long double.
      const int64_t index = ttt::report::log_bin_index(bin.first, k);
      EXPECT_GT(index, previous_index);
      previous_index = index;
      const long double lo = std::pow(2.0L, static_cast<long double>(index) / k),
                        hi = std::pow(2.0L, static_cast<long double>(index + 1) / k);
      EXPECT_LE(lo, static_cast<long double>(bin.first)) << "k " << k << " bin " << index;
      EXPECT_LT(static_cast<long double>(bin.last), hi) << "k " << k << " bin " << index;
      EXPECT_EQ(ttt::report::log_bin_index(bin.last, k), index);
      total += bin.mean * static_cast<double>(bin.count);
    }
    EXPECT_EQ(next, 70001);
    double expected = 0;
    for (double v : values) expected += v;
    EXPECT_NEAR(total, expected, 1e-6 * expected);
  }
  // Powers of two open a bin exactly (log2 is not trusted to be exact).
  for (int64_t m = 0; m < 40; ++m) {
    EXPECT_EQ(ttt::report::log_bin_index(int64_t{1} << m, 8), 8 * m) << m;
    // From 16 on, the last bin of an octave (2^(m - 1/8) .. 2^m - 1) holds a position.
    if (m >= 4) EXPECT_EQ(ttt::report::log_bin_index((int64_t{1} << m) - 1, 8), 8 * m - 1) << m;
  }
}

TEST(PositionBins, NonFiniteValuesAreNotAveragedAndBadCountsThrow) {
  const auto bins = ttt::report::log_position_bins({kNaN, 2, kInf, 6, 1}, 1);
  ASSERT_EQ(bins.size(), 2u);  // position 1 holds nothing finite: no bin
  EXPECT_EQ(bins[0].first, 2);
  EXPECT_EQ(bins[0].count, 1);  // 2 and inf
  EXPECT_DOUBLE_EQ(bins[0].mean, 2);
  EXPECT_DOUBLE_EQ(bins[1].mean, 3.5);
  EXPECT_TRUE(ttt::report::log_position_bins({}, 4).empty());
  EXPECT_THROW(ttt::report::log_position_bins({1, 2}, 0), std::invalid_argument);
}

TEST(PositionBins, BinnedEvalSeriesSitsAtTheMiddleOfEachBin) {
  const Series raw = ttt::position_series("e2e", {4, 3, 2, 2, 1, 1, 1}, 0);
  EXPECT_EQ(raw.x, (std::vector<double>{1, 2, 3, 4, 5, 6, 7}));
  const Series binned = ttt::position_series("e2e", {4, 3, 2, 2, 1, 1, 1}, 1);
  EXPECT_EQ(binned.label, "e2e");
  EXPECT_EQ(binned.x, (std::vector<double>{1, 2.5, 5.5}));
  EXPECT_EQ(binned.y, (std::vector<double>{4, 2.5, 1.25}));
}

// The fill colours of the heat map's cells, in the order they are drawn (row by row).
std::vector<std::string> cell_fills(const std::string& svg) {
  std::vector<std::string> fills;
  for (std::size_t at = svg.find("<rect x="); at != std::string::npos; at = svg.find("<rect x=", at + 1)) {
    const std::size_t tag_end = svg.find('>', at);
    if (svg.find("stroke=", at) > tag_end) continue;  // colour-bar steps have no stroke
    const std::size_t begin = svg.find("fill=\"", at) + 6;
    fills.push_back(svg.substr(begin, svg.find('"', begin) - begin));
  }
  return fills;
}

TEST_F(PlotTest, HeatmapColoursAndWritesEveryCell) {
  ttt::HeatmapOptions options;
  options.title = "NIAH <E2E> & FA";
  ttt::write_heatmap_svg(path("h.svg"), {"0.00", "1.00"}, {"1K", "2K", "4K"}, {{0, 0.5, 1}, {kNaN, 2, -1}}, options);
  const std::string svg = read_text(path("h.svg"));
  EXPECT_EQ(xml_problem(svg), "");
  const auto t = texts(svg);
  for (const std::string label : {"1K", "2K", "4K", "0.00", "1.00", "0.50", "2.00", "-1.00", "-"})
    EXPECT_TRUE(contains(t, label)) << label;
  EXPECT_TRUE(contains(t, "NIAH &lt;E2E&gt; &amp; FA"));
  // Lightest at lo, darkest at hi, clamped outside; a missing value is grey.
  EXPECT_EQ(cell_fills(svg),
            (std::vector<std::string>{"#F7FBFF", "#6BAED6", "#08306B", "#DDDDDD", "#08306B", "#F7FBFF"}));
}

TEST_F(PlotTest, HeatmapShapeErrorsWriteNothing) {
  const ttt::HeatmapOptions options;
  EXPECT_THROW(ttt::write_heatmap_svg(path("a.svg"), {"r"}, {"a", "b"}, {{1}}, options), std::runtime_error);
  EXPECT_THROW(ttt::write_heatmap_svg(path("b.svg"), {"r", "s"}, {"a"}, {{1}}, options), std::runtime_error);
  EXPECT_THROW(ttt::write_heatmap_svg(path("c.svg"), {}, {}, {}, options), std::runtime_error);
  ttt::HeatmapOptions flat;
  flat.hi = flat.lo;
  EXPECT_THROW(ttt::write_heatmap_svg(path("d.svg"), {"r"}, {"a"}, {{1}}, flat), std::runtime_error);
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(PlotTest, ReadsMetricsJsonl) {
  write_text(dir_ / "swa" / "metrics.jsonl",
             "{\"step\":0,\"loss\":5.5,\"gradient_norm\":1.0}\n"
             "\n"
             "{\"step\":1,\"loss\":null}\n"
             "{\"step\":2,\"loss\":4.25}\n"
             "{\"step\":3,\"lo");  // a run still appending its last line
  const Series series = ttt::read_training_loss_series(path("swa"));
  EXPECT_EQ(series.label, "swa");
  EXPECT_EQ(series.x, (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(series.y[0], 5.5);
  EXPECT_TRUE(std::isnan(series.y[1]));
  EXPECT_EQ(series.y[2], 4.25);
}

TEST_F(PlotTest, RunFileErrorsNameTheRun) {
  fs::create_directories(dir_ / "nothing");
  auto message = [](auto&& read) {
    try {
      read();
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string empty_run = path("nothing");
  EXPECT_NE(message([&] { ttt::read_eval_series(empty_run); }).find("nothing"), std::string::npos);
  EXPECT_NE(message([&] { ttt::read_training_loss_series(empty_run); }).find("nothing"), std::string::npos);

  write_text(dir_ / "bad" / "eval.json", R"({"loss": 1.0, "nll_by_position": []})");
  write_text(dir_ / "bad" / "metrics.jsonl", "{\"step\":0,\"loss\":1}\nnot json\n{\"step\":2,\"loss\":1}\n");
  EXPECT_NE(message([&] { ttt::read_eval_series(path("bad")); }).find("empty"), std::string::npos);
  EXPECT_NE(message([&] { ttt::read_training_loss_series(path("bad")); }).find("line 2"), std::string::npos);

  write_text(dir_ / "empty" / "metrics.jsonl", "");
  write_text(dir_ / "empty" / "eval.json", "{\"loss\": 1.0}");
  EXPECT_NE(message([&] { ttt::read_training_loss_series(path("empty")); }).find("no steps"), std::string::npos);
  EXPECT_NE(message([&] { ttt::read_eval_series(path("empty")); }).find("nll_by_position"), std::string::npos);
}

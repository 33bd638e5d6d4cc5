// SVG line plots. The layout is fixed (title on top, y label on the left, x label below, legend
// in the upper-right corner of the plot area, where loss curves that fall over time or position
// leave room, or upper left for rising curves); only the data decides ranges and ticks.
#include "report/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "report/plot_scale.h"
#include "report/svg_text.h"
#include "util/file_io.h"

namespace ttt {
namespace {

using report::number;
using report::Point;
using report::text_width;
using report::Tick;
using report::xml_escape;

// Okabe-Ito: distinguishable with the common colour-vision deficiencies and in greyscale print.
// Yellow is last: it is the hardest to see on white.
constexpr const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                    "#E69F00", "#56B4E9", "#000000", "#F0E442"};
constexpr int kPaletteSize = static_cast<int>(sizeof(kPalette) / sizeof(kPalette[0]));
// After a full pass through the palette, series are told apart by dashes.
constexpr const char* kDashes[] = {"", "6,3", "2,3", "8,3,2,3"};
constexpr int kDashCount = static_cast<int>(sizeof(kDashes) / sizeof(kDashes[0]));

constexpr double kMarginLeft = 72, kMarginRight = 24, kMarginTop = 44, kMarginBottom = 56;
constexpr double kFontSize = 12, kTitleFontSize = 15;
constexpr double kLegendRow = 18, kLegendSwatch = 24;

struct DrawnSeries {
  std::string label;
  std::vector<Point> points;
};

struct Range {
  double lo = 0;
  double hi = 1;
};

Range x_range(const std::vector<DrawnSeries>& series, bool log_x) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series)
    for (const auto& p : s.points) lo = std::min(lo, p.x), hi = std::max(hi, p.x);
  if (hi > lo) return {lo, hi};
  // A single x: centre it in a range that still has ticks.
  if (log_x) return {lo / 2, lo * 2};
  const double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
  return {lo - pad, lo + pad};
}

Range y_range(const std::vector<DrawnSeries>& series) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series)
    for (const auto& p : s.points) lo = std::min(lo, p.y), hi = std::max(hi, p.y);
  // 5% head and foot room so the extreme points do not sit on the frame.
  if (hi > lo) {
    const double margin = (hi - lo) * 0.05;
    return {lo - margin, hi + margin};
  }
  const double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.05;
  return {lo - pad, lo + pad};
}

// Maps data coordinates onto the pixel rectangle of the plot area.
class Frame {
 public:
  Frame(const PlotOptions& options, Range x, Range y)
      : left_(kMarginLeft),
        right_(options.width - kMarginRight),
        top_(kMarginTop),
        bottom_(options.height - kMarginBottom),
        log_x_(options.log_x),
        x_(x),
        y_(y) {}

  double px(double x) const {
    const double a = log_x_ ? std::log(x) : x, lo = log_x_ ? std::log(x_.lo) : x_.lo,
                 hi = log_x_ ? std::log(x_.hi) : x_.hi;
    return left_ + (a - lo) / (hi - lo) * (right_ - left_);
  }
  double py(double y) const { return bottom_ - (y - y_.lo) / (y_.hi - y_.lo) * (bottom_ - top_); }

  double left() const { return left_; }
  double right() const { return right_; }
  double top() const { return top_; }
  double bottom() const { return bottom_; }
  double width() const { return right_ - left_; }
  double height() const { return bottom_ - top_; }

 private:
  double left_, right_, top_, bottom_;
  bool log_x_;
  Range x_, y_;
};

void write_axes(std::ostream& svg, const Frame& frame, const std::vector<Tick>& x_ticks,
                const std::vector<Tick>& y_ticks, const std::vector<Tick>& x_minor_ticks) {
  svg << "<g class=\"grid\" stroke=\"#e3e3e3\" stroke-width=\"1\">\n";
  for (const auto& t : x_ticks) {
    const std::string x = number(frame.px(t.value));
    svg << "<line x1=\"" << x << "\" y1=\"" << number(frame.top()) << "\" x2=\"" << x << "\" y2=\""
        << number(frame.bottom()) << "\"/>\n";
  }
  for (const auto& t : y_ticks) {
    const std::string y = number(frame.py(t.value));
    svg << "<line x1=\"" << number(frame.left()) << "\" y1=\"" << y << "\" x2=\"" << number(frame.right()) << "\" y2=\""
        << y << "\"/>\n";
  }
  svg << "</g>\n";

  svg << "<g class=\"ticks\" stroke=\"#333333\" stroke-width=\"1\">\n";
  for (const auto& t : x_ticks) {
    const std::string x = number(frame.px(t.value));
    svg << "<line x1=\"" << x << "\" y1=\"" << number(frame.bottom()) << "\" x2=\"" << x << "\" y2=\""
        << number(frame.bottom() + 5) << "\"/>\n";
  }
  for (const auto& t : x_minor_ticks) {
    const std::string x = number(frame.px(t.value));
    svg << "<line x1=\"" << x << "\" y1=\"" << number(frame.bottom()) << "\" x2=\"" << x << "\" y2=\""
        << number(frame.bottom() + 3) << "\"/>\n";
  }
  for (const auto& t : y_ticks) {
    const std::string y = number(frame.py(t.value));
    svg << "<line x1=\"" << number(frame.left() - 5) << "\" y1=\"" << y << "\" x2=\"" << number(frame.left())
        << "\" y2=\"" << y << "\"/>\n";
  }
  svg << "</g>\n";

  svg << "<g class=\"x-tick-labels\" text-anchor=\"middle\">\n";
  for (const auto& t : x_ticks)
    svg << "<text x=\"" << number(frame.px(t.value)) << "\" y=\"" << number(frame.bottom() + 19) << "\">"
        << xml_escape(t.label) << "</text>\n";
  svg << "</g>\n";
  svg << "<g class=\"y-tick-labels\" text-anchor=\"end\">\n";
  for (const auto& t : y_ticks)
    svg << "<text x=\"" << number(frame.left() - 8) << "\" y=\"" << number(frame.py(t.value) + 4) << "\">"
        << xml_escape(t.label) << "</text>\n";
  svg << "</g>\n";

  svg << "<rect class=\"frame\" x=\"" << number(frame.left()) << "\" y=\"" << number(frame.top()) << "\" width=\""
      << number(frame.width()) << "\" height=\"" << number(frame.height())
      << "\" fill=\"none\" stroke=\"#333333\" stroke-width=\"1\"/>\n";
}

void write_labels(std::ostream& svg, const Frame& frame, const PlotOptions& options) {
  const double centre_x = (frame.left() + frame.right()) / 2;
  if (!options.title.empty())
    svg << "<text class=\"title\" x=\"" << number(centre_x) << "\" y=\"" << number(kMarginTop / 2 + 5)
        << "\" text-anchor=\"middle\" font-size=\"" << kTitleFontSize << "\" font-weight=\"bold\">"
        << xml_escape(options.title) << "</text>\n";
  if (!options.x_label.empty())
    svg << "<text class=\"x-label\" x=\"" << number(centre_x) << "\" y=\"" << number(options.height - 12)
        << "\" text-anchor=\"middle\">" << xml_escape(options.x_label) << "</text>\n";
  if (!options.y_label.empty()) {
    const double centre_y = (frame.top() + frame.bottom()) / 2;
    svg << "<text class=\"y-label\" x=\"16\" y=\"" << number(centre_y)
        << "\" text-anchor=\"middle\" transform=\"rotate(-90 16 " << number(centre_y) << ")\">"
        << xml_escape(options.y_label) << "</text>\n";
  }
}

void write_series(std::ostream& svg, const Frame& frame, const std::vector<DrawnSeries>& series, bool markers) {
  svg << "<g class=\"series\" clip-path=\"url(#plot-area)\" fill=\"none\" stroke-width=\"1.5\" "
         "stroke-linejoin=\"round\" stroke-linecap=\"round\">\n";
  for (std::size_t i = 0; i < series.size(); ++i) {
    const char* colour = kPalette[i % kPaletteSize];
    const char* dashes = kDashes[(i / kPaletteSize) % kDashCount];
    svg << "<polyline stroke=\"" << colour << "\"";
    if (*dashes) svg << " stroke-dasharray=\"" << dashes << "\"";
    svg << " points=\"";
    for (std::size_t j = 0; j < series[i].points.size(); ++j) {
      const Point& p = series[i].points[j];
      svg << (j ? " " : "") << number(frame.px(p.x)) << "," << number(frame.py(p.y));
    }
    svg << "\"/>\n";
    // A one-point polyline draws nothing; a dot keeps the series visible.
    if (markers || series[i].points.size() == 1)
      for (const Point& p : series[i].points)
        svg << "<circle cx=\"" << number(frame.px(p.x)) << "\" cy=\"" << number(frame.py(p.y)) << "\" r=\"3\" fill=\""
            << colour << "\"/>\n";
  }
  svg << "</g>\n";
}

void write_legend(std::ostream& svg, const Frame& frame, const std::vector<DrawnSeries>& series, bool upper_left) {
  double widest = 0;
  for (const auto& s : series) widest = std::max(widest, text_width(s.label));
  const double box_width = kLegendSwatch + 24 + widest, box_height = kLegendRow * series.size() + 8;
  const double box_x = upper_left ? frame.left() + 8 : frame.right() - box_width - 8, box_y = frame.top() + 8;
  svg << "<g class=\"legend\">\n";
  svg << "<rect x=\"" << number(box_x) << "\" y=\"" << number(box_y) << "\" width=\"" << number(box_width)
      << "\" height=\"" << number(box_height)
      << "\" fill=\"#ffffff\" fill-opacity=\"0.85\" stroke=\"#999999\" stroke-width=\"0.8\"/>\n";
  for (std::size_t i = 0; i < series.size(); ++i) {
    const double row_y = box_y + 4 + kLegendRow * (i + 0.5);
    const char* dashes = kDashes[(i / kPaletteSize) % kDashCount];
    svg << "<line x1=\"" << number(box_x + 6) << "\" y1=\"" << number(row_y) << "\" x2=\""
        << number(box_x + 6 + kLegendSwatch) << "\" y2=\"" << number(row_y) << "\" stroke=\""
        << kPalette[i % kPaletteSize] << "\" stroke-width=\"2\"";
    if (*dashes) svg << " stroke-dasharray=\"" << dashes << "\"";
    svg << "/>\n";
    svg << "<text x=\"" << number(box_x + 12 + kLegendSwatch) << "\" y=\"" << number(row_y + 4) << "\">"
        << xml_escape(series[i].label) << "</text>\n";
  }
  svg << "</g>\n";
}

}  // namespace

void write_line_plot_svg(const std::string& path, const std::vector<Series>& series, const PlotOptions& options) {
  if (options.width < 240 || options.height < 180)
    throw std::runtime_error("plot " + path + " is too small: " + std::to_string(options.width) + "x" +
                             std::to_string(options.height) + " (at least 240x180)");
  std::vector<DrawnSeries> drawn;
  for (const auto& s : series) {
    if (s.x.size() != s.y.size())
      throw std::runtime_error("series '" + s.label + "' has " + std::to_string(s.x.size()) + " x but " +
                               std::to_string(s.y.size()) + " y values");
    auto points =
        report::bin_points(report::drawable_points(s.x, s.y, options.log_x), options.max_points, options.log_x);
    if (!points.empty()) drawn.push_back({s.label, std::move(points)});
  }
  if (drawn.empty()) throw std::runtime_error("nothing to plot in " + path + ": no series has a finite point");

  const Range x = x_range(drawn, options.log_x), y = y_range(drawn);
  const Frame frame(options, x, y);
  // Room per tick label: linear labels can be long ("12500"), log labels are short ("128K").
  const int max_x_ticks = std::max(2, static_cast<int>(frame.width() / (options.log_x ? 50 : 80)));
  const int max_y_ticks = std::max(2, static_cast<int>(frame.height() / 45));
  const auto x_ticks =
      options.log_x ? report::log_ticks(x.lo, x.hi, max_x_ticks) : report::linear_ticks(x.lo, x.hi, max_x_ticks);
  const auto y_ticks = report::linear_ticks(y.lo, y.hi, max_y_ticks);
  // When not every power is labelled, short unlabelled marks still show each doubling or decade.
  std::vector<Tick> x_minor_ticks;
  if (options.log_x) {
    const auto every_power = report::log_ticks(x.lo, x.hi, std::numeric_limits<int>::max());
    if (every_power.size() > x_ticks.size()) x_minor_ticks = every_power;
  }

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n";
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << options.width << "\" height=\""
      << options.height << "\" viewBox=\"0 0 " << options.width << " " << options.height
      << "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"" << kFontSize << "\" fill=\"#222222\">\n";
  svg << "<title>" << xml_escape(options.title) << "</title>\n";
  svg << "<defs><clipPath id=\"plot-area\"><rect x=\"" << number(frame.left()) << "\" y=\"" << number(frame.top())
      << "\" width=\"" << number(frame.width()) << "\" height=\"" << number(frame.height())
      << "\"/></clipPath></defs>\n";
  svg << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  write_axes(svg, frame, x_ticks, y_ticks, x_minor_ticks);
  write_labels(svg, frame, options);
  write_series(svg, frame, drawn, options.markers);
  write_legend(svg, frame, drawn, options.legend_upper_left);
  svg << "</svg>\n";
  write_file_atomically(path, svg.str());
}

}  // namespace ttt

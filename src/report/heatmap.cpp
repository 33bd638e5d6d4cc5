// The layout: title on top, the y label rotated on the left, row labels right-aligned beside the
// grid, column labels and the x label below it, a colour bar on the right. Cell sizes are fixed
// and the picture grows with the grid.
#include "report/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "report/svg_text.h"
#include "util/file_io.h"

namespace ttt {
namespace {

using report::decimal;
using report::number;
using report::text_width;
using report::xml_escape;

constexpr double kCellWidth = 64, kCellHeight = 32, kMargin = 16, kTitleHeight = 36, kAxisLabel = 24;
constexpr double kBarWidth = 14, kBarGap = 20;

// A sequential blue scale from near-white (0) to dark blue (1), linear in sRGB between its stops.
std::string colour(double t) {
  static constexpr double kStops[][3] = {
      {247, 251, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};
  constexpr int kLast = 4;
  t = std::clamp(t, 0.0, 1.0) * kLast;
  const int i = std::min(kLast - 1, static_cast<int>(std::floor(t)));
  const double f = t - i;
  char text[16];
  int rgb[3];
  for (int c = 0; c < 3; ++c)
    rgb[c] = static_cast<int>(std::lround(kStops[i][c] + f * (kStops[i + 1][c] - kStops[i][c])));
  std::snprintf(text, sizeof(text), "#%02X%02X%02X", rgb[0], rgb[1], rgb[2]);
  return text;
}

}  // namespace

void write_heatmap_svg(const std::string& path, const std::vector<std::string>& row_labels,
                       const std::vector<std::string>& column_labels, const std::vector<std::vector<double>>& values,
                       const HeatmapOptions& options) {
  const size_t rows = row_labels.size(), columns = column_labels.size();
  if (rows == 0 || columns == 0) throw std::runtime_error("nothing to draw in " + path + ": the heat map has no cell");
  if (values.size() != rows)
    throw std::runtime_error("heat map " + path + ": " + std::to_string(values.size()) + " rows of values for " +
                             std::to_string(rows) + " row labels");
  for (const auto& row : values)
    if (row.size() != columns)
      throw std::runtime_error("heat map " + path + ": a row of " + std::to_string(row.size()) + " values for " +
                               std::to_string(columns) + " column labels");
  if (!(options.lo < options.hi)) throw std::runtime_error("heat map " + path + ": the colour range must have lo < hi");

  double row_label_width = 0;
  for (const auto& label : row_labels) row_label_width = std::max(row_label_width, text_width(label));
  const double grid_left = kMargin + kAxisLabel + row_label_width + 8, grid_top = kMargin + kTitleHeight;
  const double grid_width = kCellWidth * columns, grid_height = kCellHeight * rows;
  const double bar_left = grid_left + grid_width + kBarGap;
  const double width = std::max(bar_left + kBarWidth + 8 + text_width(decimal(options.hi, options.decimals)) + kMargin,
                                kMargin * 2 + text_width(options.title) * 15.0 / 12.0);  // the title is 15 px
  const double height = grid_top + grid_height + 22 + kAxisLabel + kMargin;

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n";
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << number(width) << "\" height=\""
      << number(height) << "\" viewBox=\"0 0 " << number(width) << " " << number(height)
      << "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\" fill=\"#222222\">\n";
  svg << "<title>" << xml_escape(options.title) << "</title>\n";
  svg << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  svg << "<text x=\"" << number(width / 2) << "\" y=\"" << number(kMargin + 16)
      << "\" text-anchor=\"middle\" font-size=\"15\">" << xml_escape(options.title) << "</text>\n";
  for (size_t r = 0; r < rows; ++r) {
    const double y = grid_top + kCellHeight * r;
    svg << "<text x=\"" << number(grid_left - 8) << "\" y=\"" << number(y + kCellHeight / 2 + 4)
        << "\" text-anchor=\"end\">" << xml_escape(row_labels[r]) << "</text>\n";
    for (size_t c = 0; c < columns; ++c) {
      const double x = grid_left + kCellWidth * c, v = values[r][c];
      const bool empty = !std::isfinite(v);
      const double t = empty ? 0 : (v - options.lo) / (options.hi - options.lo);
      svg << "<rect x=\"" << number(x) << "\" y=\"" << number(y) << "\" width=\"" << number(kCellWidth)
          << "\" height=\"" << number(kCellHeight) << "\" fill=\"" << (empty ? std::string("#DDDDDD") : colour(t))
          << "\" stroke=\"#ffffff\"/>\n";
      svg << "<text x=\"" << number(x + kCellWidth / 2) << "\" y=\"" << number(y + kCellHeight / 2 + 4)
          << "\" text-anchor=\"middle\" fill=\"" << (!empty && t > 0.55 ? "#ffffff" : "#222222") << "\">"
          << (empty ? "-" : decimal(v, options.decimals)) << "</text>\n";
    }
  }
  for (size_t c = 0; c < columns; ++c)
    svg << "<text x=\"" << number(grid_left + kCellWidth * (c + 0.5)) << "\" y=\""
        << number(grid_top + grid_height + 16) << "\" text-anchor=\"middle\">" << xml_escape(column_labels[c])
        << "</text>\n";
  svg << "<text x=\"" << number(grid_left + grid_width / 2) << "\" y=\"" << number(grid_top + grid_height + 22 + 16)
      << "\" text-anchor=\"middle\">" << xml_escape(options.x_label) << "</text>\n";
  const double y_mid = grid_top + grid_height / 2;
  svg << "<text x=\"" << number(kMargin + 12) << "\" y=\"" << number(y_mid)
      << "\" text-anchor=\"middle\" transform=\"rotate(-90 " << number(kMargin + 12) << " " << number(y_mid) << ")\">"
      << xml_escape(options.y_label) << "</text>\n";
  // The colour bar: hi at the top, lo at the bottom, in 20 steps.
  constexpr int kSteps = 20;
  for (int i = 0; i < kSteps; ++i)
    svg << "<rect x=\"" << number(bar_left) << "\" y=\"" << number(grid_top + grid_height * i / kSteps) << "\" width=\""
        << number(kBarWidth) << "\" height=\"" << number(grid_height / kSteps + 0.5) << "\" fill=\""
        << colour(1.0 - (i + 0.5) / kSteps) << "\"/>\n";
  svg << "<text x=\"" << number(bar_left + kBarWidth + 4) << "\" y=\"" << number(grid_top + 10) << "\">"
      << decimal(options.hi, options.decimals) << "</text>\n";
  svg << "<text x=\"" << number(bar_left + kBarWidth + 4) << "\" y=\"" << number(grid_top + grid_height) << "\">"
      << decimal(options.lo, options.decimals) << "</text>\n";
  svg << "</svg>\n";
  write_file_atomically(path, svg.str());
}

}  // namespace ttt

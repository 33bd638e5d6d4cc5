// Heat maps as standalone SVG files: a grid of labelled cells, each coloured by its value and
// showing it, as the needle-in-a-haystack accuracy by depth and context length is drawn.
#pragma once

#include <string>
#include <vector>

namespace ttt {

struct HeatmapOptions {
  std::string title;
  std::string x_label;  // below the columns
  std::string y_label;  // left of the rows
  double lo = 0;        // values at or below: the lightest colour
  double hi = 1;        // at or above: the darkest
  int decimals = 2;     // of the value written in each cell
};

// values[row][column]; a value that is not finite is an empty (grey) cell. Throws
// std::runtime_error when the shapes disagree, there is no cell, lo >= hi, or the file cannot be
// written (written beside and renamed: never half a file).
void write_heatmap_svg(const std::string& path, const std::vector<std::string>& row_labels,
                       const std::vector<std::string>& column_labels, const std::vector<std::vector<double>>& values,
                       const HeatmapOptions& options);

}  // namespace ttt

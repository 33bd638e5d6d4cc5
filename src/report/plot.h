// Plots as standalone SVG files (no dependencies): loss by token position (the paper's central
// figure) and training-loss curves, several runs overlaid.
#pragma once

#include <string>
#include <vector>

#include "report/position_bins.h"

namespace ttt {

struct Series {
  std::string label;
  std::vector<double> x;
  std::vector<double> y;
};

struct PlotOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  int width = 800;
  int height = 500;
  // Points are averaged into at most this many bins along x before drawing (per-token curves
  // of 128K points would otherwise make huge, noisy files). 0 = no binning.
  int max_points = 512;
  // A dot at every drawn point: for curves of a few measured points (latency against context),
  // where the line between them is not data.
  bool markers = false;
  // The legend goes in the upper-right corner, where curves that fall leave room, unless this
  // puts it upper left, for curves that rise (time against context).
  bool legend_upper_left = false;
};

// Writes an SVG line plot (one polyline per series, legend, axes with ticks). Throws
// std::runtime_error when the file cannot be written or there is nothing to plot.
void write_line_plot_svg(const std::string& path, const std::vector<Series>& series, const PlotOptions& options);

// A loss-by-position series from values[i] at token position i + 1: every position when
// bins_per_octave is 0, else one point per log-spaced bin (report/position_bins.h), at the middle
// of its positions, holding their mean.
Series position_series(const std::string& label, const std::vector<double>& values, int bins_per_octave = 0);

// The series of bins already made: one point per bin, at the middle of its positions, holding
// their mean.
Series binned_series(const std::string& label, const std::vector<report::PositionBin>& bins);

// Reads a run directory's eval.json (nll_by_position) as a series labelled with the run name,
// binned as position_series does.
Series read_eval_series(const std::string& run_dir, int bins_per_octave = 0);
// Reads a run directory's metrics.jsonl (step, loss) as a series labelled with the run name.
Series read_training_loss_series(const std::string& run_dir);

}  // namespace ttt

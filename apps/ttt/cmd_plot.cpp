// `ttt plot`: overlays runs as SVG figures, loss by token position (the paper's comparison of
// TTT-E2E with SWA and full attention) and training loss by step, and prints their eval losses.
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "commands.h"
#include "report/plot.h"
#include "report/run_summary.h"

namespace ttt::cli {
namespace {

struct PlotCommandOptions {
  std::vector<std::string> run_dirs;
  std::string output = ".";
  bool log_x = false;
  int bins_per_octave = 8;
};

int run_plot(const PlotCommandOptions& options) {
  namespace fs = std::filesystem;
  std::vector<Series> by_position, training_loss;
  std::vector<report::EvalSummary> summaries;
  if (options.bins_per_octave < 0)
    throw std::invalid_argument("--bins-per-octave must be >= 0, not " + std::to_string(options.bins_per_octave));
  for (const auto& run_dir : options.run_dirs) {
    if (!fs::is_directory(run_dir)) throw std::runtime_error("run directory " + run_dir + " does not exist");
    const bool has_eval = fs::exists(fs::path(run_dir) / "eval.json");
    const bool has_metrics = fs::exists(fs::path(run_dir) / "metrics.jsonl");
    if (!has_eval && !has_metrics)
      throw std::runtime_error("run directory " + run_dir + " has neither eval.json nor metrics.jsonl");
    if (has_eval) {
      by_position.push_back(read_eval_series(run_dir, options.bins_per_octave));
      summaries.push_back(report::read_eval_summary(run_dir));
    }
    if (has_metrics) training_loss.push_back(read_training_loss_series(run_dir));
  }

  fs::create_directories(options.output);
  if (!by_position.empty()) {
    PlotOptions plot;
    plot.title = "Loss by token position";
    plot.x_label = options.log_x ? "token position (log scale)" : "token position";
    plot.y_label = options.bins_per_octave > 0
                       ? "mean NLL (" + std::to_string(options.bins_per_octave) + " log-spaced bins per doubling)"
                       : "mean NLL";
    plot.log_x = options.log_x;
    const std::string path = (fs::path(options.output) / "loss_by_position.svg").string();
    write_line_plot_svg(path, by_position, plot);
    std::cout << path << "\n";
  }
  if (!training_loss.empty()) {
    PlotOptions plot;
    plot.title = "Training loss";
    plot.x_label = "step";
    plot.y_label = "loss";
    const std::string path = (fs::path(options.output) / "training_loss.svg").string();
    write_line_plot_svg(path, training_loss, plot);
    std::cout << path << "\n";
  }
  if (!summaries.empty()) std::cout << "\n" << report::eval_summary_table(summaries);
  std::cout << std::flush;
  return 0;
}

}  // namespace

Run add_plot_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "plot", "Plot runs as SVG: loss_by_position.svg (eval.json) and training_loss.svg (metrics.jsonl), overlaid");
  auto options = std::make_shared<PlotCommandOptions>();
  cmd->add_option("runs", options->run_dirs, "Run directories (each with eval.json and/or metrics.jsonl)")->required();
  cmd->add_option("-o,--output", options->output, "Directory to write the SVG files into")->capture_default_str();
  cmd->add_flag("--log-x", options->log_x, "Logarithmic token-position axis (ticks at powers of 2)");
  cmd->add_option("--bins-per-octave", options->bins_per_octave,
                  "Loss by position: mean over log-spaced bins of positions, this many per doubling (0: every "
                  "position)")
      ->capture_default_str();
  return [options]() { return run_plot(*options); };
}

}  // namespace ttt::cli

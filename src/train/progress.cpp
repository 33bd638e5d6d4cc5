#include "train/progress.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "util/file_io.h"

namespace ttt {
namespace {

std::string format_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  else
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
  return buf;
}

}  // namespace

ProgressReporter::ProgressReporter(const std::filesystem::path& run_dir, int64_t first_step, int64_t total_steps)
    : metrics_path_(run_dir / "metrics.jsonl"),
      first_step_(first_step),
      total_steps_(total_steps),
      tty_(isatty(STDOUT_FILENO) != 0) {
  std::string kept;
  bool dropped = false;
  {
    std::ifstream in(metrics_path_);
    std::string line;
    while (std::getline(in, line)) {
      bool keep = false;
      try {
        keep = nlohmann::json::parse(line).at("step").get<int64_t>() < first_step_;
      } catch (const std::exception&) {
        // A line cut by a kill: dropped.
      }
      if (keep)
        kept += line + "\n";
      else
        dropped = true;
    }
  }
  // Rewritten beside and renamed: a kill at any moment leaves the old history or the new one.
  if (dropped) write_file_atomically(metrics_path_.string(), kept);
}

ProgressReporter::~ProgressReporter() {
  if (bar_drawn_) std::cout << std::endl;
}

void ProgressReporter::report(const StepMetrics& m) {
  const nlohmann::json j = {{"step", m.step},
                            {"loss", m.loss},
                            {"gradient_norm", m.gradient_norm},
                            {"outer_learning_rate", m.outer_learning_rate},
                            {"inner_learning_rate", m.inner_learning_rate},
                            {"tokens_per_second", m.tokens_per_second},
                            {"wall_time", m.wall_time}};
  std::ofstream(metrics_path_, std::ios::app) << j.dump() << "\n";

  const int64_t done = m.step + 1, ran = done - first_step_;
  const double eta = ran > 0 ? m.wall_time / static_cast<double>(ran) * static_cast<double>(total_steps_ - done) : 0.0;
  char stats[200];
  std::snprintf(stats, sizeof(stats), "loss %.4f  grad %.3f  lr %.2e  ilr %.3f  %.0f tok/s  ETA %s", m.loss,
                m.gradient_norm, m.outer_learning_rate, m.inner_learning_rate, m.tokens_per_second,
                format_duration(eta).c_str());
  std::ostringstream line;
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(kWidth * static_cast<double>(done) / static_cast<double>(total_steps_));
    line << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] " << done << "/"
         << total_steps_ << "  " << stats << "\033[K";
    std::cout << line.str() << std::flush;
    bar_drawn_ = true;
  } else {
    std::cout << "step " << done << "/" << total_steps_ << "  " << stats << std::endl;
  }
}

void ProgressReporter::message(const std::string& text) {
  if (bar_drawn_) std::cout << "\r\033[K";
  std::cout << text << std::endl;
  bar_drawn_ = false;
}

}  // namespace ttt

// Per-step reporting: metrics.jsonl in the run directory (one JSON object per step) and the
// terminal: a progress bar redrawn in place on a TTY, plain log lines otherwise.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace ttt {

struct StepMetrics {
  int64_t step = 0;
  double loss = 0.0;
  double gradient_norm = 0.0;
  double outer_learning_rate = 0.0;
  double inner_learning_rate = 0.0;
  double tokens_per_second = 0.0;
  double wall_time = 0.0;  // seconds since the run (or its resumption) started
};

class ProgressReporter {
 public:
  // Appends to run_dir/metrics.jsonl; a resumed run first drops the lines of steps >= first_step
  // (written after the checkpoint it resumes from), so the file holds each step once.
  ProgressReporter(const std::filesystem::path& run_dir, int64_t first_step, int64_t total_steps);
  ~ProgressReporter();
  void report(const StepMetrics& m);
  void message(const std::string& text);  // a line that does not break the bar

 private:
  std::filesystem::path metrics_path_;
  int64_t first_step_, total_steps_;
  bool tty_;
  bool bar_drawn_ = false;
};

}  // namespace ttt

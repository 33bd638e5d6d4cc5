// What `ttt plot` prints next to the figures: one row per run with its evaluation loss and how
// the per-position NLL differs between the start and the end of the context.
#pragma once

#include <string>
#include <vector>

namespace ttt::report {

struct EvalSummary {
  std::string run;               // the run directory's name
  double loss = 0;               // eval.json "loss" (NaN when it was not finite)
  long long num_sequences = 0;   // eval.json "num_sequences"
  double first_quarter_nll = 0;  // mean nll_by_position over the first quarter of positions
  double last_quarter_nll = 0;   // ... and over the last quarter
};

// The label of a run: the last component of its directory ("runs/e2e/" -> "e2e").
std::string run_label(const std::string& run_dir);

// Reads run_dir/eval.json. Throws std::runtime_error naming the file when it is missing or malformed.
EvalSummary read_eval_summary(const std::string& run_dir);

// A markdown table: | run | eval loss | NLL first 1/4 | NLL last 1/4 |.
std::string eval_summary_table(const std::vector<EvalSummary>& rows);

}  // namespace ttt::report

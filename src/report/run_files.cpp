// Reading the files a training run leaves behind (eval.json, metrics.jsonl) for plots and tables.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "report/plot.h"
#include "report/position_bins.h"
#include "report/run_summary.h"
#include "util/file_io.h"

namespace ttt {
namespace {

namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string read_whole_file(const fs::path& path, const std::string& run_dir) {
  if (!fs::is_regular_file(path)) throw std::runtime_error("run " + run_dir + " has no " + path.filename().string());
  return read_file(path.string());
}

// nlohmann::json writes NaN and infinities as null: read them back as NaN, which plots skip.
double number_or_nan(const nlohmann::json& value, const std::string& what) {
  if (value.is_null()) return kNaN;
  if (!value.is_number()) throw std::runtime_error(what + " is not a number");
  return value.get<double>();
}

nlohmann::json read_eval_json(const std::string& run_dir) {
  const fs::path path = fs::path(run_dir) / "eval.json";
  const std::string text = read_whole_file(path, run_dir);
  nlohmann::json eval;
  try {
    eval = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("cannot parse " + path.string() + ": " + e.what());
  }
  if (!eval.is_object()) throw std::runtime_error(path.string() + " is not a JSON object");
  const auto nll = eval.find("nll_by_position");
  if (nll == eval.end() || !nll->is_array()) throw std::runtime_error(path.string() + " has no nll_by_position array");
  return eval;
}

std::vector<double> nll_by_position(const nlohmann::json& eval, const std::string& run_dir) {
  std::vector<double> nll;
  nll.reserve(eval["nll_by_position"].size());
  for (const auto& value : eval["nll_by_position"])
    nll.push_back(number_or_nan(value, run_dir + "/eval.json nll_by_position entry"));
  return nll;
}

double mean_of_finite(const std::vector<double>& values, std::size_t begin, std::size_t end) {
  double sum = 0;
  std::size_t count = 0;
  for (std::size_t i = begin; i < end; ++i)
    if (std::isfinite(values[i])) sum += values[i], ++count;
  return count ? sum / static_cast<double>(count) : kNaN;
}

std::string cell(double value) {
  if (!std::isfinite(value)) return "n/a";
  char text[32];
  std::snprintf(text, sizeof(text), "%.4f", value);
  return text;
}

}  // namespace

namespace report {

std::string run_label(const std::string& run_dir) {
  fs::path path = fs::path(run_dir).lexically_normal();
  // "runs/e2e/" normalises to "runs/e2e/" with an empty file name; "." has no useful name at all.
  if (path.filename().empty()) path = path.parent_path();
  if (path.empty() || path.filename() == "." || path.filename() == "..") path = fs::absolute(path).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();
  return path.filename().empty() ? run_dir : path.filename().string();
}

EvalSummary read_eval_summary(const std::string& run_dir) {
  const nlohmann::json eval = read_eval_json(run_dir);
  EvalSummary summary;
  summary.run = run_label(run_dir);
  summary.loss = number_or_nan(eval.value("loss", nlohmann::json()), run_dir + "/eval.json loss");
  const auto sequences = eval.find("num_sequences");
  if (sequences != eval.end() && sequences->is_number()) summary.num_sequences = sequences->get<long long>();
  const std::vector<double> nll = nll_by_position(eval, run_dir);
  const std::size_t quarter = std::max<std::size_t>(1, nll.size() / 4);
  summary.first_quarter_nll = nll.empty() ? kNaN : mean_of_finite(nll, 0, quarter);
  summary.last_quarter_nll = nll.empty() ? kNaN : mean_of_finite(nll, nll.size() - quarter, nll.size());
  return summary;
}

std::string eval_summary_table(const std::vector<EvalSummary>& rows) {
  std::ostringstream table;
  table << "| run | eval loss | NLL first 1/4 | NLL last 1/4 |\n";
  table << "|---|---:|---:|---:|\n";
  for (const auto& row : rows) {
    // A '|' in a directory name would split the cell.
    std::string run;
    for (const char c : row.run) run += c == '|' ? std::string("\\|") : std::string(1, c);
    table << "| " << run << " | " << cell(row.loss) << " | " << cell(row.first_quarter_nll) << " | "
          << cell(row.last_quarter_nll) << " |\n";
  }
  return table.str();
}

}  // namespace report

Series position_series(const std::string& label, const std::vector<double>& values, int bins_per_octave) {
  if (bins_per_octave != 0) return binned_series(label, report::log_position_bins(values, bins_per_octave));
  Series series;
  series.label = label;
  // Positions count from 1, so that the first token sits at 2^0 on a log axis.
  series.y = values;
  series.x.resize(values.size());
  for (std::size_t i = 0; i < series.x.size(); ++i) series.x[i] = static_cast<double>(i + 1);
  return series;
}

Series binned_series(const std::string& label, const std::vector<report::PositionBin>& bins) {
  Series series;
  series.label = label;
  for (const auto& bin : bins) {
    series.x.push_back(0.5 * static_cast<double>(bin.first + bin.last));
    series.y.push_back(bin.mean);
  }
  return series;
}

Series read_eval_series(const std::string& run_dir, int bins_per_octave) {
  const nlohmann::json eval = read_eval_json(run_dir);
  const auto values = nll_by_position(eval, run_dir);
  if (values.empty()) throw std::runtime_error(run_dir + "/eval.json has an empty nll_by_position");
  return position_series(report::run_label(run_dir), values, bins_per_octave);
}

Series read_training_loss_series(const std::string& run_dir) {
  const fs::path path = fs::path(run_dir) / "metrics.jsonl";
  const std::string text = read_whole_file(path, run_dir);
  Series series;
  series.label = report::run_label(run_dir);
  std::istringstream lines(text);
  std::string line;
  int line_number = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const bool last_line_unterminated = lines.eof() && !text.empty() && text.back() != '\n';
    nlohmann::json step;
    try {
      step = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      // A run still training may be caught halfway through appending its last line.
      if (last_line_unterminated) break;
      throw std::runtime_error("cannot parse " + path.string() + " line " + std::to_string(line_number) + ": " +
                               e.what());
    }
    const std::string where = path.string() + " line " + std::to_string(line_number);
    if (!step.is_object() || !step.contains("step") || !step.contains("loss"))
      throw std::runtime_error(where + " lacks \"step\" or \"loss\"");
    series.x.push_back(number_or_nan(step["step"], where + " step"));
    series.y.push_back(number_or_nan(step["loss"], where + " loss"));
  }
  if (series.x.empty()) throw std::runtime_error(path.string() + " has no steps");
  return series;
}

}  // namespace ttt

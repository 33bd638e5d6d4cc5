#include "infer/needle_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "report/cell_files.h"
#include "report/heatmap.h"
#include "report/svg_text.h"

namespace ttt {
namespace {

using report::decimal;

// Lengths and depths in the order they were run, each once.
template <typename T, typename Get>
std::vector<T> distinct(const std::vector<NeedleCell>& cells, Get get) {
  std::vector<T> out;
  for (const auto& cell : cells)
    if (std::find(out.begin(), out.end(), get(cell)) == out.end()) out.push_back(get(cell));
  return out;
}

std::string length_label(int64_t length) {
  return length % 1024 == 0 ? std::to_string(length / 1024) + "K" : std::to_string(length);
}

// values[depth][length] of the grid; NaN where a cell is missing.
std::vector<std::vector<double>> grid(const std::vector<NeedleCell>& cells, const std::vector<double>& depths,
                                      const std::vector<int64_t>& lengths,
                                      const std::function<double(const NeedleCell&)>& value) {
  std::vector<std::vector<double>> out(depths.size(), std::vector<double>(lengths.size(), NAN));
  for (const auto& cell : cells) {
    const auto r = std::find(depths.begin(), depths.end(), cell.depth) - depths.begin();
    const auto c = std::find(lengths.begin(), lengths.end(), cell.length) - lengths.begin();
    out[r][c] = value(cell);
  }
  return out;
}

}  // namespace

std::string needle_table(const std::vector<NeedleCell>& cells, const std::string& value_name,
                         const std::function<double(const NeedleCell&)>& value) {
  const auto lengths = distinct<int64_t>(cells, [](const NeedleCell& c) { return c.length; });
  const auto depths = distinct<double>(cells, [](const NeedleCell& c) { return c.depth; });
  const auto values = grid(cells, depths, lengths, value);
  std::ostringstream out;
  out << "| " << value_name << ": depth \\ length |";
  for (int64_t length : lengths) out << " " << length_label(length) << " |";
  out << "\n|---|";
  for (size_t c = 0; c < lengths.size(); ++c) out << "---:|";
  out << "\n";
  for (size_t r = 0; r < depths.size(); ++r) {
    out << "| " << decimal(depths[r], 2) << " |";
    for (double v : values[r]) out << " " << (std::isfinite(v) ? decimal(v, 2) : "-") << " |";
    out << "\n";
  }
  return out.str();
}

void write_needle_outputs(const std::string& dir, const std::vector<NeedleCell>& cells, const nlohmann::json& about,
                          const std::string& title) {
  std::vector<nlohmann::json> json_cells;
  for (const auto& cell : cells)
    json_cells.push_back({{"length", cell.length},
                          {"depth", cell.depth},
                          {"trials", cell.trials},
                          {"accuracy", cell.accuracy},
                          {"token_accuracy", cell.token_accuracy},
                          {"token_accuracy_at", cell.token_accuracy_at},
                          {"answer_nll", cell.answer_nll},
                          {"needle_distance", cell.distance},
                          {"window", cell.window},
                          {"seconds", cell.seconds}});
  report::write_cell_files(dir, "niah", about, json_cells,
                           {"length", "depth", "trials", "accuracy", "token_accuracy", "answer_nll", "needle_distance",
                            "window", "seconds"});
  const std::filesystem::path d(dir);
  const auto lengths = distinct<int64_t>(cells, [](const NeedleCell& c) { return c.length; });
  const auto depths = distinct<double>(cells, [](const NeedleCell& c) { return c.depth; });
  std::vector<std::string> rows, columns;
  for (double depth : depths) rows.push_back(decimal(depth, 2));
  for (int64_t length : lengths) columns.push_back(length_label(length));
  HeatmapOptions options;
  options.title = title;
  options.x_label = "context length (tokens)";
  options.y_label = "needle depth";
  write_heatmap_svg((d / "niah_accuracy.svg").string(), rows, columns,
                    grid(cells, depths, lengths, [](const NeedleCell& c) { return c.accuracy; }), options);
}

}  // namespace ttt

#include "infer/recall_report.h"

#include <sstream>

#include "report/cell_files.h"
#include "report/svg_text.h"

namespace ttt {

std::string recall_table(const std::vector<RecallCell>& cells) {
  using report::decimal;
  std::ostringstream out;
  out << "| gap | distance | window | first reading NLL | repeat NLL | control NLL | repeat accuracy | control "
         "accuracy |\n|---:|---:|---|---:|---:|---:|---:|---:|\n";
  for (const auto& c : cells)
    out << "| " << c.gap << " | " << c.distance << " | " << c.window << " | " << decimal(c.first_nll, 4) << " | "
        << decimal(c.repeat_nll, 4) << " | " << decimal(c.control_nll, 4) << " | " << decimal(c.repeat_accuracy, 3)
        << " | " << decimal(c.control_accuracy, 3) << " |\n";
  return out.str();
}

void write_recall_outputs(const std::string& dir, const std::vector<RecallCell>& cells, const nlohmann::json& about) {
  std::vector<nlohmann::json> rows;
  for (const auto& c : cells)
    rows.push_back({{"gap", c.gap},
                    {"distance", c.distance},
                    {"trials", c.trials},
                    {"first_nll", c.first_nll},
                    {"repeat_nll", c.repeat_nll},
                    {"control_nll", c.control_nll},
                    {"repeat_accuracy", c.repeat_accuracy},
                    {"control_accuracy", c.control_accuracy},
                    {"window", c.window},
                    {"seconds", c.seconds}});
  report::write_cell_files(dir, "recall", about, rows,
                           {"gap", "distance", "trials", "first_nll", "repeat_nll", "control_nll", "repeat_accuracy",
                            "control_accuracy", "window", "seconds"});
}

}  // namespace ttt

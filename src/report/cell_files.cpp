#include "report/cell_files.h"

#include <filesystem>
#include <sstream>

#include "util/file_io.h"

namespace ttt::report {

void write_cell_files(const std::string& dir, const std::string& name, const nlohmann::json& about,
                      const std::vector<nlohmann::json>& cells, const std::vector<std::string>& csv_columns) {
  const std::filesystem::path d(dir);
  std::filesystem::create_directories(d);
  nlohmann::json j = about;
  j["cells"] = cells;
  std::ostringstream csv;
  csv.precision(9);
  for (size_t c = 0; c < csv_columns.size(); ++c) csv << (c ? "," : "") << csv_columns[c];
  csv << "\n";
  for (const auto& cell : cells) {
    for (size_t c = 0; c < csv_columns.size(); ++c) {
      const auto& value = cell.at(csv_columns[c]);
      if (c) csv << ",";
      if (value.is_string())
        csv << value.get<std::string>();
      else if (value.is_number_integer())
        csv << value.get<int64_t>();
      else
        csv << value.get<double>();
    }
    csv << "\n";
  }
  write_file_atomically((d / (name + ".json")).string(), j.dump(1) + "\n");
  write_file_atomically((d / (name + ".csv")).string(), csv.str());
}

}  // namespace ttt::report

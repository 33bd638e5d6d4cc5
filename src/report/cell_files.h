// The files of an evaluation made of cells (the needle suite's lengths x depths, the recall task's
// gaps): NAME.json, what was run (`about`) with every cell under "cells", and NAME.csv, a header
// and a row per cell of the chosen fields.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ttt::report {

// Writes both into `dir` (created if missing), each beside and renamed. Every cell must hold every
// column, as a number or a string; numbers go to the CSV with 9 significant digits.
void write_cell_files(const std::string& dir, const std::string& name, const nlohmann::json& about,
                      const std::vector<nlohmann::json>& cells, const std::vector<std::string>& csv_columns);

}  // namespace ttt::report

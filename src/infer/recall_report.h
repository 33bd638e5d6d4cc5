// The recall task's outputs: recall.json (every cell and how it was run), recall.csv (a row per
// gap) and the markdown table printed.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "infer/recall.h"

namespace ttt {

// Markdown: one row per gap with the distance, the window, the three NLLs and the accuracies.
std::string recall_table(const std::vector<RecallCell>& cells);

// Writes both files into `dir` (created if missing), each beside and renamed. `about` goes into
// recall.json beside the cells (checkpoint, step, text, options).
void write_recall_outputs(const std::string& dir, const std::vector<RecallCell>& cells, const nlohmann::json& about);

}  // namespace ttt

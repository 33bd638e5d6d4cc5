// The needle suite's outputs: niah.json (every cell and how it was run), niah.csv (a row per
// cell), niah_accuracy.svg (accuracy heat map, depth x length) and the markdown tables printed.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "infer/needle.h"

namespace ttt {

// Markdown: one row per depth, one column per length, each cell `value(cell)` with 2 decimals.
std::string needle_table(const std::vector<NeedleCell>& cells, const std::string& value_name,
                         const std::function<double(const NeedleCell&)>& value);

// Writes the three files into `dir` (created if missing), each beside and renamed. `about` goes
// into niah.json beside the cells (checkpoint, step, tokenizer, haystack, options).
void write_needle_outputs(const std::string& dir, const std::vector<NeedleCell>& cells, const nlohmann::json& about,
                          const std::string& title);

}  // namespace ttt

// Views of the field registry (config/schema.cpp) for code outside the configuration library:
// which fields select something here, and the documentation of those that do not.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace ttt {

// "key: value" for every field of `section` ("model", "training", ...) that this implementation
// uses, in registry order, values written as to_yaml writes them. Fields kept only for parity with
// the official configuration, and those whose default is the only supported value, are left out:
// they cannot change what a run computes.
std::vector<std::string> used_field_lines(const Config& config, const std::string& section);

// The Markdown table of the fields that select nothing here (parity) and of those whose default
// is the only supported value, with what each does in the reference or why. docs/configuration.md
// holds this table verbatim (a test checks it).
std::string unused_fields_markdown();

}  // namespace ttt

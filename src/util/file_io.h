// Whole-file reads and atomic whole-file writes, shared by every component that stores or loads
// small files (configs, metadata, eval outputs, plots, prompts).
#pragma once

#include <string>

namespace ttt {

// The file's bytes. Throws std::runtime_error("cannot read <path>").
std::string read_file(const std::string& path);

// The file's bytes, or standard input when `path` is empty or "-".
std::string read_file_or_stdin(const std::string& path);

// Writes `<path>.partial`, then renames it over `path`: a reader never sees part of the file, and
// an earlier version stays intact until the new one is complete. A failed write removes the
// temporary. Throws std::runtime_error naming the path.
void write_file_atomically(const std::string& path, const std::string& content);

}  // namespace ttt

// Reading plain-text documents for dataset preparation: one file is one document; CRLF (and lone
// CR) become LF; text must be valid UTF-8, or, when asked explicitly, is read as Latin-1 and
// converted.
#pragma once

#include <string>
#include <vector>

namespace ttt {

// Reads one document. Invalid UTF-8 throws std::runtime_error naming the file and byte offset,
// unless `latin1_fallback`, which converts such a file from Latin-1 (and sets *converted).
std::string read_text_document(const std::string& path, bool latin1_fallback, bool* converted = nullptr);
// The same for a document's bytes in memory; `path` names it in errors.
std::string decode_text_document(std::string bytes, const std::string& path, bool latin1_fallback,
                                 bool* converted = nullptr);

// The files named by `inputs`: files as given, directories expanded to their *.txt files
// (recursively, sorted). Throws std::runtime_error for a missing input or when nothing is found.
std::vector<std::string> list_text_files(const std::vector<std::string>& inputs);

}  // namespace ttt

#include "data/text_documents.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "tokenizer/utf8.h"
#include "util/file_io.h"

namespace ttt {
namespace fs = std::filesystem;

std::string read_text_document(const std::string& path, bool latin1_fallback, bool* converted) {
  return decode_text_document(read_file(path), path, latin1_fallback, converted);
}

std::string decode_text_document(std::string raw, const std::string& path, bool latin1_fallback, bool* converted) {
  if (converted) *converted = false;
  if (const size_t bad = utf8::find_invalid(raw); bad != std::string_view::npos) {
    if (!latin1_fallback)
      throw std::runtime_error(path + ": invalid UTF-8 at byte offset " + std::to_string(bad) +
                               " (pass --latin1 to read files that are not UTF-8 as Latin-1)");
    raw = utf8::from_latin1(raw);
    if (converted) *converted = true;
  }
  std::string text;
  text.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r') {
      text.push_back('\n');
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
    } else {
      text.push_back(raw[i]);
    }
  }
  return text;
}

std::vector<std::string> list_text_files(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const auto& input : inputs) {
    if (fs::is_regular_file(input)) {
      files.push_back(input);
    } else if (fs::is_directory(input)) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(input))
        if (e.is_regular_file() && e.path().extension() == ".txt") found.push_back(e.path().string());
      std::sort(found.begin(), found.end());  // directory order is not portable
      if (found.empty()) throw std::runtime_error("no .txt files under " + input);
      files.insert(files.end(), found.begin(), found.end());
    } else {
      throw std::runtime_error("input not found: " + input);
    }
  }
  if (files.empty()) throw std::runtime_error("no input files");
  return files;
}

}  // namespace ttt

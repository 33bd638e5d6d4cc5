// Single-thread encoding throughput of a tokenizer on the Gutenberg books, as one JSON object.
//   bench_tokenizer [BOOK_DIR] [TOKENIZER]
// defaults: data/gutenberg and data/tokenizer-llama3/tokenizer.json (run from the source root).
// Books that are not valid UTF-8 (two are Latin-1) are converted from Latin-1 first; only
// encode() is timed (loading the tokenizer is reported separately).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/file_io.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  const fs::path book_dir = argc > 1 ? argv[1] : "data/gutenberg";
  const std::string spec = argc > 2 ? argv[2] : "data/tokenizer-llama3/tokenizer.json";
  try {
    const auto load_start = std::chrono::steady_clock::now();
    const auto tokenizer = ttt::load_tokenizer(spec);
    const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
    std::vector<fs::path> books;
    for (const auto& entry : fs::directory_iterator(book_dir))
      if (entry.path().extension() == ".txt") books.push_back(entry.path());
    if (books.empty()) throw std::runtime_error("no .txt files in " + book_dir.string());
    std::sort(books.begin(), books.end());
    int64_t bytes = 0, tokens = 0, converted = 0;
    double seconds = 0.0;
    for (const auto& book : books) {
      std::string text = ttt::read_file(book.string());
      if (ttt::utf8::find_invalid(text) != std::string::npos) {
        text = ttt::utf8::from_latin1(text);
        ++converted;
      }
      const auto start = std::chrono::steady_clock::now();
      const auto ids = tokenizer->encode(text);
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      bytes += static_cast<int64_t>(text.size());
      tokens += static_cast<int64_t>(ids.size());
    }
    nlohmann::json result = {{"tokenizer", tokenizer->name()},
                             {"books", books.size()},
                             {"latin1_converted", converted},
                             {"bytes", bytes},
                             {"tokens", tokens},
                             {"seconds", seconds},
                             {"MB/s", bytes / seconds / 1e6},
                             {"bytes_per_token", double(bytes) / tokens},
                             {"load_seconds", load_seconds}};
    std::cout << result.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_tokenizer: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}

#include "data/text_corpus.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "data/byte_tokenizer.h"

namespace ttt {
namespace fs = std::filesystem;

namespace {

std::string read_normalised(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str(), out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i)
    if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) out.push_back(text[i]);
  return out;
}

}  // namespace

TokenSplits load_text_corpus(const TextCorpusOptions& options) {
  if (!fs::is_directory(options.path)) throw std::runtime_error("dataset directory not found: " + options.path);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(options.path))
    if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path());
  if (files.empty()) throw std::runtime_error("no .txt files in " + options.path);
  std::sort(files.begin(), files.end());  // directory order is not portable

  std::vector<size_t> order(files.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(options.split_seed);
  std::shuffle(order.begin(), order.end(), rng);
  size_t num_val = static_cast<size_t>(options.val_fraction * files.size() + 0.5);
  if (files.size() >= 2) num_val = std::clamp<size_t>(num_val, 1, files.size() - 1);
  else num_val = 0;

  ByteTokenizer tokenizer;
  TokenSplits splits;
  for (size_t rank = 0; rank < order.size(); ++rank) {
    auto& dest = rank < num_val ? splits.val : splits.train;
    dest.push_back(static_cast<int32_t>(ByteTokenizer::kBos));
    auto ids = tokenizer.encode(read_normalised(files[order[rank]]));
    dest.insert(dest.end(), ids.begin(), ids.end());
    dest.push_back(static_cast<int32_t>(ByteTokenizer::kEos));
  }
  return splits;
}

}  // namespace ttt

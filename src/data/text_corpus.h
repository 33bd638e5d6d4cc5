// A directory of plain-text documents read straight into token streams with the byte tokenizer:
// the dataset of the small CPU experiments until they are prepared into zarr datasets. Each file
// is one document, laid out as BOS + bytes + EOS (CRLF normalised to LF), and whole documents
// are assigned to the train or val split by a seeded draw.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ttt {

struct TextCorpusOptions {
  std::string path;           // directory of *.txt files
  double val_fraction = 0.1;  // share of documents held out (at least one when there are two or more)
  uint64_t split_seed = 0;
};

struct TokenSplits {
  std::vector<int32_t> train;
  std::vector<int32_t> val;
};

// Throws std::runtime_error naming the path when it is missing or holds no .txt file.
TokenSplits load_text_corpus(const TextCorpusOptions& options);

}  // namespace ttt

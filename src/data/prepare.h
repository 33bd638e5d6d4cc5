// Dataset preparation: text documents in, a tokenized dataset out in the official layout (a zarr
// v3 group with 1-D `train` and `val` arrays). Each document becomes BOS + tokens + EOS; whole
// documents go to `val` by a seeded draw. The dataset is written beside its destination and
// renamed into place only when complete, so an interrupted run never leaves a dataset that looks
// valid, and an existing dataset is replaced only with `overwrite`, only when `ttt prepare` wrote
// it, and only once the new one is complete. Temporary folders of runs that were killed are
// removed by the next run (only those of processes of this host that no longer run).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace ttt {

// Tokens per zarr chunk: at least a few KB per chunk file (smaller ones make millions of files),
// at most what one blosc buffer holds for 8-byte ids.
inline constexpr int64_t kMinChunkLength = 1024;
inline constexpr int64_t kMaxChunkLength = int64_t{1} << 27;

struct PrepareOptions {
  std::vector<std::string> inputs;  // text files or directories of *.txt
  std::string output;               // the zarr group directory to create
  double val_fraction = 0.1;        // share of documents in `val` (at least one when > 0 and >= 2 docs)
  uint64_t seed = 0;                // the document split's seed
  int64_t min_document_tokens = 0;  // shorter documents (BOS/EOS included) are dropped
  int64_t chunk_length = 1 << 20;   // tokens per zarr chunk
  std::string dtype = "auto";  // auto (uint16 when the vocabulary fits, else uint32) | int32 | uint32 | int64 | uint16
  bool latin1_fallback = false;  // read non-UTF-8 files as Latin-1 instead of failing
  bool overwrite = false;
};

struct PrepareReport {
  int64_t documents = 0, dropped = 0, train_documents = 0, val_documents = 0;
  int64_t train_tokens = 0, val_tokens = 0, input_bytes = 0;
  std::vector<std::string> latin1_files;  // files converted from Latin-1
  double seconds = 0.0;
};

PrepareReport prepare_dataset(const PrepareOptions& options, const Tokenizer& tokenizer);

}  // namespace ttt

#include "data/prepare.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>
#include <random>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "data/text_documents.h"
#include "data/zarr/zarr.h"

namespace ttt {
namespace fs = std::filesystem;

namespace {

std::string choose_dtype(const std::string& requested, int64_t vocab_size) {
  if (requested != "auto") return requested;
  return vocab_size <= 65536 ? "uint16" : "uint32";
}

// The documents that go to `val`: a seeded draw of round(fraction * n) of them (at least one
// when the fraction is positive and there are two or more documents, never all of them).
std::vector<bool> choose_val_documents(size_t n, double fraction, uint64_t seed) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  size_t num_val = static_cast<size_t>(fraction * static_cast<double>(n) + 0.5);
  if (fraction > 0 && n >= 2) num_val = std::clamp<size_t>(num_val, 1, n - 1);
  if (n < 2) num_val = 0;
  std::vector<bool> is_val(n, false);
  for (size_t k = 0; k < num_val; ++k) is_val[order[k]] = true;
  return is_val;
}

}  // namespace

PrepareReport prepare_dataset(const PrepareOptions& options, const Tokenizer& tokenizer) {
  const auto start = std::chrono::steady_clock::now();
  if (options.output.empty()) throw std::runtime_error("prepare: no output path");
  if (options.val_fraction < 0 || options.val_fraction >= 1)
    throw std::runtime_error("prepare: validation fraction must be in [0, 1), got " + std::to_string(options.val_fraction));
  if (options.chunk_length <= 0) throw std::runtime_error("prepare: chunk length must be positive");
  const fs::path output = fs::absolute(options.output).lexically_normal();
  if (fs::exists(output) && !options.overwrite)
    throw std::runtime_error("prepare: " + output.string() + " already exists (pass --overwrite to replace it)");

  const auto files = list_text_files(options.inputs);
  const auto is_val = choose_val_documents(files.size(), options.val_fraction, options.seed);
  ZarrWriteOptions zopts;
  zopts.dtype = choose_dtype(options.dtype, tokenizer.vocab_size());
  zopts.chunk_length = options.chunk_length;

  // Everything is written under a temporary sibling and renamed at the end.
  const fs::path tmp = output.parent_path() / (output.filename().string() + ".tmp-" + std::to_string(getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  PrepareReport report;
  try {
    ZarrArrayWriter train((tmp / "train").string(), zopts), val((tmp / "val").string(), zopts);
    std::vector<int64_t> ids;
    for (size_t i = 0; i < files.size(); ++i) {
      bool converted = false;
      const std::string text = read_text_document(files[i], options.latin1_fallback, &converted);
      if (converted) report.latin1_files.push_back(files[i]);
      report.input_bytes += static_cast<int64_t>(text.size());
      const auto tokens = tokenizer.encode(text);
      report.documents += 1;
      if (static_cast<int64_t>(tokens.size()) + 2 < options.min_document_tokens) {
        report.dropped += 1;
        continue;
      }
      ids.assign(1, tokenizer.bos_id());
      ids.insert(ids.end(), tokens.begin(), tokens.end());
      ids.push_back(tokenizer.eos_id());
      auto& dest = is_val[i] ? val : train;
      dest.append(ids.data(), ids.size());
      (is_val[i] ? report.val_documents : report.train_documents) += 1;
    }
    train.finish();
    val.finish();
    report.train_tokens = train.length();
    report.val_tokens = val.length();
    const nlohmann::json attributes = {{"tokenizer", tokenizer.name()},
                                       {"documents", report.documents - report.dropped},
                                       {"val_fraction", options.val_fraction},
                                       {"seed", options.seed}};
    write_zarr_group(tmp.string(), attributes.dump());
  } catch (...) {
    fs::remove_all(tmp);
    throw;
  }
  if (fs::exists(output)) {
    // Replace only now that the new dataset is complete; the old one goes last.
    const fs::path old = output.parent_path() / (output.filename().string() + ".old-" + std::to_string(getpid()));
    fs::rename(output, old);
    fs::rename(tmp, output);
    fs::remove_all(old);
  } else {
    fs::rename(tmp, output);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace ttt

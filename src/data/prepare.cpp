#include "data/prepare.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <stdexcept>

#include "data/text_documents.h"
#include "data/zarr/zarr.h"
#include "util/file_io.h"
#include "util/process_tag.h"

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

// What `ttt prepare` writes into a dataset's group attributes; --overwrite replaces only a
// dataset that carries it (or the attributes of datasets written before it).
constexpr const char* kWrittenBy = "ttt prepare";

bool is_prepared_dataset(const fs::path& dir) {
  if (!is_zarr_group(dir.string())) return false;
  try {
    const auto attributes = nlohmann::json::parse(read_file((dir / "zarr.json").string())).at("attributes");
    return attributes.value("written_by", "") == kWrittenBy ||
           (attributes.contains("tokenizer") && attributes.contains("documents") &&
            attributes.contains("val_fraction"));
  } catch (const std::exception&) {
    return false;
  }
}

// Leftovers of earlier runs killed mid-way beside `output`, "<name>.tmp-<tag>" (a dataset being
// written) and "<name>.old-<tag>" (the dataset being replaced), of processes that no longer run
// (util/process_tag.h). A run killed between moving the old dataset aside and moving the new one
// in leaves no `output`: the old dataset is then put back, never deleted.
void recover_abandoned_work(const fs::path& output) {
  std::error_code error;
  for (const auto& old : abandoned_siblings(output.string(), ".old-")) {
    if (!fs::exists(output))
      fs::rename(old, output);
    else
      fs::remove_all(old, error);
  }
  for (const auto& tmp : abandoned_siblings(output.string(), ".tmp-")) fs::remove_all(tmp, error);
}

}  // namespace

PrepareReport prepare_dataset(const PrepareOptions& options, const Tokenizer& tokenizer) {
  const auto start = std::chrono::steady_clock::now();
  if (options.output.empty()) throw std::runtime_error("prepare: no output path");
  if (options.val_fraction < 0 || options.val_fraction >= 1)
    throw std::runtime_error("prepare: validation fraction must be in [0, 1), got " +
                             std::to_string(options.val_fraction));
  if (options.chunk_length < kMinChunkLength || options.chunk_length > kMaxChunkLength)
    throw std::runtime_error("prepare: chunk length must be in [" + std::to_string(kMinChunkLength) + ", " +
                             std::to_string(kMaxChunkLength) + "] tokens, got " + std::to_string(options.chunk_length));
  const fs::path output = fs::absolute(options.output).lexically_normal();
  recover_abandoned_work(output);
  if (fs::exists(output) && !options.overwrite)
    throw std::runtime_error("prepare: " + output.string() + " already exists (pass --overwrite to replace it)");
  if (fs::exists(output) && !is_prepared_dataset(output))
    throw std::runtime_error("prepare: " + output.string() +
                             " exists and is not a dataset written by ttt prepare; --overwrite replaces only such a "
                             "dataset (remove it yourself if it should go)");

  const auto files = list_text_files(options.inputs);
  const auto is_val = choose_val_documents(files.size(), options.val_fraction, options.seed);
  ZarrWriteOptions zopts;
  zopts.dtype = choose_dtype(options.dtype, tokenizer.vocab_size());
  zopts.chunk_length = options.chunk_length;

  // Everything is written under a temporary sibling and renamed at the end.
  const fs::path tmp = output.parent_path() / (output.filename().string() + ".tmp-" + process_tag());
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
    const nlohmann::json attributes = {{"written_by", kWrittenBy},
                                       {"tokenizer", tokenizer.name()},
                                       {"documents", report.documents - report.dropped},
                                       {"val_fraction", options.val_fraction},
                                       {"seed", options.seed}};
    write_zarr_group(tmp.string(), attributes.dump());
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
  if (fs::exists(output)) {
    // Replace only now that the new dataset is complete; the old one goes last.
    const fs::path old = output.parent_path() / (output.filename().string() + ".old-" + process_tag());
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

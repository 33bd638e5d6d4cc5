#include "data/dataset.h"

#include "data/byte_tokenizer.h"
#include "data/sequence_loader.h"
#include "data/text_corpus.h"

namespace ttt {

TokenDataset open_dataset(const Config& config) {
  const auto& t = config.training;
  const auto& m = config.model;
  TokenDataset d;
  if (t.dummy_dataset) {
    const int64_t n = std::max<int64_t>(1 << 20, (t.seq_length + 1) * t.global_batch_size * 4);
    d.train = dummy_tokens(n, m.vocab_size, m.bos_token_id, static_cast<uint64_t>(t.data_seed));
    d.val = dummy_tokens(n, m.vocab_size, m.bos_token_id, static_cast<uint64_t>(t.data_seed) + 1);
    d.description = "dummy dataset: " + std::to_string(n) + " random tokens per split";
    return d;
  }
  const std::string& path = require(t.dataset_path, "training.dataset_path");
  if (m.vocab_size != ByteTokenizer::kVocabSize || m.bos_token_id != ByteTokenizer::kBos ||
      m.eos_token_id != ByteTokenizer::kEos)
    throw ConfigError("training.dataset_path '" + path +
                      "' is a text directory, read with the byte tokenizer: it needs model.vocab_size=258, "
                      "bos_token_id=256, eos_token_id=257");
  auto splits = load_text_corpus(TextCorpusOptions{path, 0.1, 0});
  d.train = std::make_shared<const std::vector<int32_t>>(std::move(splits.train));
  d.val = std::make_shared<const std::vector<int32_t>>(std::move(splits.val));
  d.description = "text corpus " + path + ": " + std::to_string(d.train->size()) + " train / " +
                  std::to_string(d.val->size()) + " val byte tokens";
  return d;
}

}  // namespace ttt

// Where a run's tokens come from (data/dataset, data/token_source): the dummy dataset, the
// evaluation loader's batches, and zarr token arrays that must hold every chunk.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "data/dataset.h"
#include "data/prepare.h"
#include "data/sequence_loader.h"
#include "data/token_source.h"
#include "tokenizer/byte_tokenizer.h"
#include "util/file_io.h"

using namespace ttt;

namespace {

LoaderOptions options(int64_t T, int64_t B) {
  LoaderOptions o;
  o.seq_length = T;
  o.batch_size = B;
  return o;
}

}  // namespace

TEST(DummyDataset, TokensAreUniformOverTwentyIdsLikeTheReference) {
  // The reference draws dummy tokens from [0, 20): a distribution a model can learn. BOS (here 1)
  // is among them and its targets are masked like in real data.
  auto source = dummy_token_source(20000, 258, /*seed=*/3);
  std::vector<int64_t> tokens(source->size());
  source->read(0, source->size(), tokens.data());
  std::vector<int64_t> counts(kDummyTokenRange, 0);
  for (int64_t t : tokens) {
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kDummyTokenRange);
    ++counts[t];
  }
  for (int64_t c : counts) EXPECT_NEAR(c, 1000, 150);  // 20000 draws over 20 ids
  // A vocabulary smaller than 20 bounds the draw.
  auto small = dummy_token_source(1000, 5, 3);
  std::vector<int64_t> few(small->size());
  small->read(0, small->size(), few.data());
  EXPECT_EQ(*std::max_element(few.begin(), few.end()), 4);
  auto o = options(16, 4);
  o.bos_token_id = 1;
  SequenceLoader loader(dummy_token_source(20000, 258, 3), o);
  const Batch b = *loader.next();
  EXPECT_TRUE(torch::equal(b.loss_mask, (b.targets != 1).to(torch::kFloat32)));
  EXPECT_LT(b.loss_mask.sum().item<double>(), b.loss_mask.numel());  // some targets are BOS
}

TEST(EvalLoader, BatchesFollowTheReferenceRuleAndDropThePartialBatch) {
  TrainingConfig t;
  t.eval_batch_size = 3;
  t.global_batch_size = 4;
  t.accum_steps = 2;
  EXPECT_EQ(eval_batch_size(t), 8);  // max(3, 4 * 4 / 2)
  t.eval_batch_size = 20;
  EXPECT_EQ(eval_batch_size(t), 20);

  // A byte-level dataset of two documents, one of them the val split (12 or 43 samples of 16
  // tokens, whichever the seeded split picks): whole batches of 8, the rest dropped.
  const auto dir = std::filesystem::temp_directory_path() / ("ttt_evalloader_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "in");
  std::ofstream(dir / "in" / "a.txt") << std::string(200, 'a');
  std::ofstream(dir / "in" / "b.txt") << std::string(702, 'b');
  PrepareOptions p;
  p.inputs = {(dir / "in" / "a.txt").string(), (dir / "in" / "b.txt").string()};
  p.output = (dir / "data").string();
  p.val_fraction = 0.5;
  const auto report = prepare_dataset(p, ByteTokenizer());
  Config config;
  config.model.vocab_size = 258;
  config.model.bos_token_id = 256;
  config.model.eos_token_id = 257;
  config.training.dataset_path = p.output;
  config.training.seq_length = 16;
  config.training.eval_batch_size = 3;
  config.training.global_batch_size = 4;
  config.training.accum_steps = 2;
  const int64_t val_samples = (report.val_tokens - 1) / 16;
  auto loader = make_eval_loader(config);
  EXPECT_EQ(loader->num_samples(), val_samples);
  EXPECT_EQ(loader->options().batch_size, 8);
  int64_t sequences = 0;
  while (auto batch = loader->next()) sequences += batch->input_ids.size(0);
  EXPECT_EQ(sequences, val_samples / 8 * 8);
  EXPECT_GT(val_samples % 8, 0) << "the split should end in a partial batch";
  // Fewer samples than one batch: a clear error naming the rule.
  config.training.eval_batch_size = 1000;
  try {
    make_eval_loader(config);
    ADD_FAILURE() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("evaluation batch of 1000"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(ZarrTokenSource, MissingChunksAndShapesBeyondTheChunksAreErrors) {
  // bad-input.md #8, #9: a missing chunk file, `c/` replaced by a file, keys switched to the v2
  // encoding, or a shape larger than the stored chunks once read as zeros (and trained on them).
  const auto dir = std::filesystem::temp_directory_path() / ("ttt_zarrsource_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "in");
  std::ofstream(dir / "in" / "a.txt") << std::string(5000, 'a');
  PrepareOptions p;
  p.inputs = {(dir / "in" / "a.txt").string()};
  p.output = (dir / "data").string();
  p.val_fraction = 0;
  p.chunk_length = kMinChunkLength;  // 5 chunks
  prepare_dataset(p, ByteTokenizer());
  const auto array = dir / "data" / "train";
  EXPECT_EQ(ZarrTokenSource(array.string()).size(), 5002);
  const std::string metadata = read_file((array / "zarr.json").string());
  auto expect_error = [&](const std::string& part) {
    try {
      ZarrTokenSource source(array.string());
      ADD_FAILURE() << "expected an error mentioning " << part;
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(array.string()), std::string::npos) << what;
      EXPECT_NE(what.find(part), std::string::npos) << what;
    }
  };
  auto with_metadata = [&](const std::string& from, const std::string& to) {
    std::string text = metadata;
    ASSERT_NE(text.find(from), std::string::npos);
    text.replace(text.find(from), from.size(), to);
    std::ofstream(array / "zarr.json", std::ios::trunc) << text;
  };
  with_metadata("5002", "8589934592");  // 2^33 values in the same 5 chunks
  expect_error("c/5");
  with_metadata("\"name\": \"default\"", "\"name\": \"v2\"");  // keys "0", "1", ...: none stored
  expect_error("missing");
  std::ofstream(array / "zarr.json", std::ios::trunc) << metadata;
  std::filesystem::rename(array / "c" / "3", dir / "chunk3");
  expect_error("c/3");
  std::filesystem::rename(dir / "chunk3", array / "c" / "3");
  std::filesystem::rename(array / "c", dir / "c");
  std::ofstream(array / "c") << "not a directory";
  expect_error("c/0");
  std::filesystem::remove_all(dir);
}

TEST(CopySpans, TrainingStreamsGetThemAndEvaluationStreamsNever) {
  Config config;
  config.training.dummy_dataset = true;
  config.training.seq_length = 64;
  config.training.global_batch_size = 4;
  config.training.copy_spans = 3;
  config.training.copy_span_length = 10;
  Config without = config;
  without.training.copy_spans = 0;
  EXPECT_EQ(make_train_loader(config)->options().copy_spans.count, 3);
  EXPECT_EQ(make_train_loader(config)->options().copy_spans.length, 10);
  EXPECT_EQ(make_train_loader(config)->options().copy_spans.random_vocab, 0);
  EXPECT_EQ(make_eval_loader(config)->options().copy_spans.count, 0);
  Config random = config;
  random.training.copy_span_random = true;
  EXPECT_EQ(make_train_loader(random)->options().copy_spans.random_vocab, random.model.vocab_size);
  const Batch copied = *make_train_loader(config)->next(), text = *make_train_loader(without)->next();
  EXPECT_FALSE(torch::equal(copied.input_ids, text.input_ids));
  EXPECT_TRUE(torch::equal(make_eval_loader(config)->next()->input_ids, make_eval_loader(without)->next()->input_ids));
}

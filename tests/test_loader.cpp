// The sample loader: cutting, masks, seeded order, rank shards, exact resume, prefetching.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include <set>

#include <filesystem>
#include <fstream>

#include "data/dataset.h"
#include "data/prefetch_loader.h"
#include "data/prepare.h"
#include "data/sequence_loader.h"
#include "data/token_source.h"
#include "util/file_io.h"
#include "tokenizer/byte_tokenizer.h"

using namespace ttt;

namespace {

// Tokens 0..n-1 (BOS = a value that appears at known places).
std::unique_ptr<TokenSource> counting_source(int64_t n) {
  std::vector<int64_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = i % 1000;
  return std::make_unique<VectorTokenSource>(std::move(t));
}

LoaderOptions options(int64_t T, int64_t B, uint64_t seed = 0) {
  LoaderOptions o;
  o.seq_length = T;
  o.batch_size = B;
  o.seed = seed;
  o.bos_token_id = 7;
  return o;
}

std::vector<int64_t> first_column(const Batch& b) {
  std::vector<int64_t> v;
  for (int64_t r = 0; r < b.input_ids.size(0); ++r) v.push_back(b.input_ids[r][0].item<int64_t>());
  return v;
}

}  // namespace

TEST(Loader, SamplesAreShiftedWindowsWithBosMask) {
  auto o = options(10, 2);
  o.shuffle = false;
  SequenceLoader loader(counting_source(101), o);
  EXPECT_EQ(loader.num_samples(), 10);  // (101 - 1) / 10
  auto b = *loader.next();
  for (int64_t t = 0; t < 10; ++t) {
    EXPECT_EQ(b.input_ids[1][t].item<int64_t>(), 10 + t);
    EXPECT_EQ(b.targets[1][t].item<int64_t>(), 11 + t);
  }
  // Target 7 (BOS) is masked out, everything else counts.
  EXPECT_EQ(b.loss_mask[0][6].item<float>(), 0.0f);
  EXPECT_EQ(b.loss_mask.sum().item<float>(), 19.0f);
}

TEST(Loader, SameSeedSameOrderOtherSeedOtherOrder) {
  SequenceLoader a(counting_source(1001), options(10, 4, 3)), b(counting_source(1001), options(10, 4, 3)),
      c(counting_source(1001), options(10, 4, 4));
  bool differs = false;
  for (int i = 0; i < 20; ++i) {
    auto x = first_column(*a.next()), y = first_column(*b.next()), z = first_column(*c.next());
    EXPECT_EQ(x, y);
    differs = differs || x != z;
  }
  EXPECT_TRUE(differs);
}

TEST(Loader, EpochCoversEverySampleOnce) {
  SequenceLoader loader(counting_source(1001), options(10, 5));
  std::multiset<int64_t> seen;
  for (int64_t i = 0; i < loader.batches_per_pass(); ++i)
    for (auto v : first_column(*loader.next())) seen.insert(v);
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 100u);
}

TEST(Loader, RankShardsAreDisjointAndCoverTheGlobalBatches) {
  const int64_t world = 3, global = 6;
  std::set<int64_t> seen;
  std::vector<std::vector<int64_t>> per_rank(world);
  for (int64_t rank = 0; rank < world; ++rank) {
    auto o = options(10, global / world, 5);
    o.rank = rank;
    o.world_size = world;
    SequenceLoader loader(counting_source(1001), o);
    EXPECT_EQ(loader.batches_per_pass(), 100 / global);  // 16 global batches, each rank 16
    for (int64_t i = 0; i < loader.batches_per_pass(); ++i)
      for (auto v : first_column(*loader.next())) {
        EXPECT_TRUE(seen.insert(v).second) << "sample read twice";
        per_rank[rank].push_back(v);
      }
  }
  EXPECT_EQ(seen.size(), 96u);  // 16 global batches of 6; 4 samples dropped as a partial batch
  // Global batch k is the single-process batch k split across ranks in order.
  SequenceLoader single(counting_source(1001), options(10, global, 5));
  auto batch0 = first_column(*single.next());
  EXPECT_EQ(std::vector<int64_t>(batch0.begin(), batch0.begin() + 2),
            std::vector<int64_t>(per_rank[0].begin(), per_rank[0].begin() + 2));
  EXPECT_EQ(std::vector<int64_t>(batch0.begin() + 2, batch0.begin() + 4),
            std::vector<int64_t>(per_rank[1].begin(), per_rank[1].begin() + 2));
}

TEST(Loader, ResumeFromPositionIsExact) {
  SequenceLoader straight(counting_source(1001), options(10, 4, 9));
  std::vector<std::vector<int64_t>> expected;
  for (int i = 0; i < 60; ++i) expected.push_back(first_column(*straight.next()));  // crosses epochs
  SequenceLoader resumed(counting_source(1001), options(10, 4, 9));
  for (int i = 0; i < 37; ++i) resumed.next();
  const int64_t saved = resumed.position();
  SequenceLoader fresh(counting_source(1001), options(10, 4, 9));
  fresh.set_position(saved);
  for (int i = 37; i < 60; ++i) EXPECT_EQ(first_column(*fresh.next()), expected[i]) << i;
}

TEST(Loader, PrefetchGivesTheSameStreamAndExactPosition) {
  SequenceLoader plain(counting_source(1001), options(10, 4, 2));
  PrefetchLoader prefetch(std::make_unique<SequenceLoader>(counting_source(1001), options(10, 4, 2)), 3);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(first_column(*prefetch.next()), first_column(*plain.next()));
  EXPECT_EQ(prefetch.position(), 10);  // consumed, not read ahead
  prefetch.set_position(4);
  SequenceLoader check(counting_source(1001), options(10, 4, 2));
  check.set_position(4);
  EXPECT_EQ(first_column(*prefetch.next()), first_column(*check.next()));
}

TEST(Loader, SinglePassEndsAndStaysEnded) {
  auto o = options(10, 4);
  o.shuffle = false;
  o.repeat = false;
  PrefetchLoader loader(std::make_unique<SequenceLoader>(counting_source(101), o));
  EXPECT_TRUE(loader.next().has_value());
  EXPECT_TRUE(loader.next().has_value());
  EXPECT_FALSE(loader.next().has_value());  // 10 samples: two batches of 4
  EXPECT_FALSE(loader.next().has_value());
}

TEST(Loader, TooSmallAndOutOfVocabularyAreErrors) {
  EXPECT_THROW(SequenceLoader(counting_source(30), options(10, 4)), std::runtime_error);
  auto o = options(10, 2);
  o.vocab_size = 50;
  SequenceLoader loader(counting_source(1001), o);
  try {
    loader.next();
    FAIL() << "expected an error for token ids >= 50";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("vocabulary"), std::string::npos) << e.what();
  }
}

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

// The sample loader: cutting, masks, seeded order, rank shards, exact resume, prefetching.
#include <gtest/gtest.h>

#include <set>

#include "data/prefetch_loader.h"
#include "data/sequence_loader.h"

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

TEST(Loader, APositionContinuesFromTheSameGlobalSampleWithAnotherWorldSize) {
  // One process takes 37 global batches of 6 (crossing an epoch); three ranks continue from its
  // position and read what it would have read next, slice by slice.
  SequenceLoader single(counting_source(1001), options(10, 6, 9));
  for (int i = 0; i < 37; ++i) single.next();
  const int64_t position = single.position();
  EXPECT_EQ(position, 37 * 6);
  std::vector<std::vector<int64_t>> expected;
  for (int i = 0; i < 5; ++i) expected.push_back(first_column(*single.next()));
  for (int64_t rank = 0; rank < 3; ++rank) {
    auto o = options(10, 2, 9);
    o.rank = rank;
    o.world_size = 3;
    SequenceLoader shard(counting_source(1001), o);
    shard.set_position(position);
    for (int i = 0; i < 5; ++i) {
      const auto got = first_column(*shard.next());
      EXPECT_EQ(got, std::vector<int64_t>(expected[i].begin() + 2 * rank, expected[i].begin() + 2 * rank + 2)) << i;
    }
    EXPECT_EQ(shard.position(), position + 5 * 6);
  }
}

TEST(Loader, PrefetchGivesTheSameStreamAndExactPosition) {
  SequenceLoader plain(counting_source(1001), options(10, 4, 2));
  PrefetchLoader prefetch(std::make_unique<SequenceLoader>(counting_source(1001), options(10, 4, 2)), 3);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(first_column(*prefetch.next()), first_column(*plain.next()));
  EXPECT_EQ(prefetch.position(), 10 * 4);  // global samples consumed, not read ahead
  prefetch.set_position(4 * 4);
  SequenceLoader check(counting_source(1001), options(10, 4, 2));
  check.set_position(4 * 4);
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

// training.copy_spans: spans of a sequence replaced by copies of earlier spans of it.
TEST(CopySpans, EachCopyRepeatsAnEarlierSpanAndLeavesTheRestAlone) {
  const int64_t n = 200, length = 12;
  for (int64_t draw = 0; draw < 50; ++draw) {
    std::vector<int64_t> t(n);
    for (int64_t i = 0; i < n; ++i) t[i] = i;
    apply_copy_spans(t.data(), n, CopySpanOptions{1, length}, 5, draw);
    // One copy into the identity: exactly one run of `length` changed tokens, holding an earlier,
    // non-overlapping run of consecutive tokens.
    std::vector<int64_t> changed;
    for (int64_t i = 0; i < n; ++i)
      if (t[i] != i) changed.push_back(i);
    ASSERT_EQ(static_cast<int64_t>(changed.size()), length) << draw;
    const int64_t d = changed.front(), s = t[d];
    EXPECT_EQ(changed.back(), d + length - 1);
    EXPECT_LE(s + length, d);
    for (int64_t k = 0; k < length; ++k) EXPECT_EQ(t[d + k], s + k);
  }
  // Several copies: every changed token holds an earlier position's token, at most count * length
  // of them change, and the same seed and draw give the same text; another draw gives another.
  auto copied = [&](int64_t count, uint64_t seed, int64_t draw) {
    std::vector<int64_t> t(n);
    for (int64_t i = 0; i < n; ++i) t[i] = i;
    apply_copy_spans(t.data(), n, CopySpanOptions{count, length}, seed, draw);
    return t;
  };
  const auto a = copied(4, 5, 3);
  int64_t changed = 0;
  for (int64_t i = 0; i < n; ++i)
    if (a[i] != i) {
      ++changed;
      EXPECT_LT(a[i], i);
    }
  EXPECT_GT(changed, 0);
  EXPECT_LE(changed, 4 * length);
  EXPECT_EQ(copied(4, 5, 3), a);
  EXPECT_NE(copied(4, 5, 4), a);
  EXPECT_NE(copied(4, 6, 3), a);
  // Random spans: the source is overwritten with ids below the vocabulary bound, and its copy
  // follows it.
  for (int64_t draw = 0; draw < 20; ++draw) {
    std::vector<int64_t> t(n);
    for (int64_t i = 0; i < n; ++i) t[i] = 1000 + i;
    apply_copy_spans(t.data(), n, CopySpanOptions{1, length, 50}, 5, draw);
    std::vector<int64_t> random_positions;
    for (int64_t i = 0; i < n; ++i)
      if (t[i] < 50) random_positions.push_back(i);
    ASSERT_EQ(static_cast<int64_t>(random_positions.size()), 2 * length) << draw;
    const int64_t s = random_positions.front(), d = random_positions[length];
    EXPECT_EQ(random_positions[length - 1], s + length - 1);
    EXPECT_EQ(random_positions.back(), d + length - 1);
    EXPECT_LE(s + length, d);
    for (int64_t k = 0; k < length; ++k) EXPECT_EQ(t[d + k], t[s + k]);
    for (int64_t i = 0; i < n; ++i)
      if (t[i] >= 50) EXPECT_EQ(t[i], 1000 + i);
  }
  // Off, and too short a sequence.
  EXPECT_EQ(copied(0, 5, 3), copied(0, 9, 9));
  std::vector<int64_t> short_sequence(2 * length - 1, 0);
  EXPECT_THROW(apply_copy_spans(short_sequence.data(), 2 * length - 1, CopySpanOptions{1, length}, 0, 0),
               std::invalid_argument);
}

TEST(CopySpans, TheLoaderKeysThemByDrawSoResumeAndReshardingReadTheSameText) {
  // Whole batches (not only their first tokens) with copies in them: one process straight
  // through, one resumed at a position, and three ranks continuing from that position.
  auto with_copies = [](int64_t B, int64_t rank = 0, int64_t world = 1) {
    auto o = options(40, B, 9);
    o.copy_spans = CopySpanOptions{2, 8};
    o.rank = rank;
    o.world_size = world;
    return o;
  };
  SequenceLoader single(counting_source(5001), with_copies(6));
  SequenceLoader plain(counting_source(5001), options(40, 6, 9));
  std::vector<Batch> expected;
  for (int i = 0; i < 30; ++i) {
    expected.push_back(*single.next());
    const Batch text = *plain.next();
    EXPECT_TRUE(torch::equal(expected.back().targets.narrow(1, 0, 39), expected.back().input_ids.narrow(1, 1, 39)));
    EXPECT_FALSE(torch::equal(expected.back().input_ids, text.input_ids)) << i;  // copies were made
  }
  SequenceLoader resumed(counting_source(5001), with_copies(6));
  resumed.set_position(17 * 6);
  for (int i = 17; i < 30; ++i) {
    const Batch b = *resumed.next();
    EXPECT_TRUE(torch::equal(b.input_ids, expected[i].input_ids)) << i;
    EXPECT_TRUE(torch::equal(b.targets, expected[i].targets)) << i;
    EXPECT_TRUE(torch::equal(b.loss_mask, expected[i].loss_mask)) << i;
  }
  for (int64_t rank = 0; rank < 3; ++rank) {
    SequenceLoader shard(counting_source(5001), with_copies(2, rank, 3));
    shard.set_position(17 * 6);
    for (int i = 17; i < 30; ++i)
      EXPECT_TRUE(torch::equal(shard.next()->input_ids, expected[i].input_ids.narrow(0, 2 * rank, 2))) << i;
  }
}

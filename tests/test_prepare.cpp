// Dataset preparation: layout, document split, text normalisation, errors, atomic output.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "data/prepare.h"
#include "data/text_documents.h"
#include "data/zarr/zarr.h"
#include "tokenizer/byte_tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/process_tag.h"

using namespace ttt;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("ttt_prepare_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path / "in");
  }
  ~TempDir() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / "in" / name, std::ios::binary) << bytes;
  }
};

std::vector<int64_t> read_all(const fs::path& array_dir) {
  ZarrArrayReader r(array_dir.string());
  return r.read(0, r.size());
}

}  // namespace

TEST(Prepare, DocumentsAreBosTokensEosAndSplitByDocument) {
  TempDir tmp;
  // Documents long enough that each split spans several chunks of the smallest chunk length.
  auto doc_length = [](int64_t i) { return 300 + 37 * i; };
  int64_t total = 0;
  for (int i = 0; i < 10; ++i) {
    tmp.write("doc" + std::to_string(i) + ".txt", std::string(doc_length(i), 'a' + i));
    total += 2 + doc_length(i);
  }
  PrepareOptions o;
  o.inputs = {(tmp.path / "in").string()};
  o.output = (tmp.path / "out").string();
  o.val_fraction = 0.2;
  o.chunk_length = kMinChunkLength;
  ByteTokenizer byte;
  auto report = prepare_dataset(o, byte);
  EXPECT_EQ(report.documents, 10);
  EXPECT_EQ(report.val_documents, 2);
  EXPECT_TRUE(is_zarr_group(o.output));
  auto train = read_all(tmp.path / "out" / "train"), val = read_all(tmp.path / "out" / "val");
  EXPECT_EQ(static_cast<int64_t>(train.size() + val.size()), total);
  EXPECT_GT(static_cast<int64_t>(train.size()), 2 * kMinChunkLength);
  // Every document is BOS, its bytes (one repeated letter), EOS; no document is split.
  for (const auto* split : {&train, &val}) {
    size_t i = 0;
    while (i < split->size()) {
      ASSERT_EQ((*split)[i], ByteTokenizer::kBos);
      const int64_t letter = (*split)[i + 1];
      size_t j = i + 1;
      while ((*split)[j] == letter) ++j;
      ASSERT_EQ((*split)[j], ByteTokenizer::kEos);
      EXPECT_EQ(static_cast<int64_t>(j - i - 1), doc_length(letter - 'a'));
      i = j + 1;
    }
  }
  // The split depends on the seed.
  o.output = (tmp.path / "out2").string();
  o.seed = 1;
  prepare_dataset(o, byte);
  EXPECT_NE(read_all(tmp.path / "out2" / "val"), val);
}

TEST(Prepare, CrlfIsNormalisedAndShortDocumentsDropped) {
  TempDir tmp;
  tmp.write("a.txt", "line one\r\nline two\r\n");
  tmp.write("b.txt", "x");
  PrepareOptions o;
  o.inputs = {(tmp.path / "in").string()};
  o.output = (tmp.path / "out").string();
  o.val_fraction = 0;
  o.min_document_tokens = 5;
  ByteTokenizer byte;
  auto report = prepare_dataset(o, byte);
  EXPECT_EQ(report.dropped, 1);
  auto train = read_all(tmp.path / "out" / "train");
  std::vector<int32_t> ids(train.begin() + 1, train.end() - 1);
  EXPECT_EQ(byte.decode(ids), "line one\nline two\n");
}

TEST(Prepare, InvalidUtf8NamesFileAndOffsetAndLeavesNothing) {
  TempDir tmp;
  tmp.write("good.txt", "fine text");
  tmp.write("bad.txt", std::string("caf\xe9 au lait"));  // Latin-1 e-acute at byte 3
  PrepareOptions o;
  o.inputs = {(tmp.path / "in").string()};
  o.output = (tmp.path / "out").string();
  ByteTokenizer byte;
  try {
    prepare_dataset(o, byte);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.txt"), std::string::npos) << msg;
    EXPECT_NE(msg.find("byte offset 3"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(o.output));
  for (const auto& e : fs::directory_iterator(tmp.path)) EXPECT_EQ(e.path().filename(), "in") << e.path();
  // With the explicit fallback the file is read as Latin-1.
  o.latin1_fallback = true;
  o.val_fraction = 0;
  auto report = prepare_dataset(o, byte);
  ASSERT_EQ(report.latin1_files.size(), 1u);
  auto train = read_all(tmp.path / "out" / "train");
  std::string all;
  for (auto t : train)
    if (t < 256) all.push_back(static_cast<char>(t));
  EXPECT_NE(all.find("caf\xc3\xa9 au lait"), std::string::npos);
}

TEST(Prepare, ExistingDatasetIsKeptUnlessOverwrite) {
  TempDir tmp;
  tmp.write("a.txt", "first version of the text");
  PrepareOptions o;
  o.inputs = {(tmp.path / "in").string()};
  o.output = (tmp.path / "out").string();
  o.val_fraction = 0;
  ByteTokenizer byte;
  prepare_dataset(o, byte);
  const auto before = read_all(tmp.path / "out" / "train");
  tmp.write("a.txt", "second");
  EXPECT_THROW(prepare_dataset(o, byte), std::runtime_error);
  EXPECT_EQ(read_all(tmp.path / "out" / "train"), before);
  o.overwrite = true;
  prepare_dataset(o, byte);
  EXPECT_EQ(read_all(tmp.path / "out" / "train").size(), std::string("second").size() + 2);
}

TEST(Prepare, OverwriteReplacesOnlyADatasetItWrote) {
  // bad-input.md #17: --overwrite once deleted an ordinary folder or file of the same name.
  TempDir tmp;
  tmp.write("a.txt", "some text");
  PrepareOptions o;
  o.inputs = {(tmp.path / "in").string()};
  o.val_fraction = 0;
  o.overwrite = true;
  ByteTokenizer byte;
  fs::create_directories(tmp.path / "folder");
  std::ofstream(tmp.path / "folder" / "notes.txt") << "keep me";
  std::ofstream(tmp.path / "file") << "keep me too";
  for (const char* name : {"folder", "file"}) {
    o.output = (tmp.path / name).string();
    try {
      prepare_dataset(o, byte);
      ADD_FAILURE() << "expected an error for " << name;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("not a dataset written by ttt prepare"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(fs::exists(tmp.path / "folder" / "notes.txt"));
  EXPECT_TRUE(fs::is_regular_file(tmp.path / "file"));
}

TEST(Prepare, TinyChunksAreRefusedAndAbandonedWorkIsCleanedUp) {
  // bad-input.md #11: chunks of 1 token made a million files; #18: killed runs left OUT.tmp-PID.
  TempDir tmp;
  tmp.write("a.txt", "some text");
  PrepareOptions o;
  o.inputs = {(tmp.path / "in").string()};
  o.output = (tmp.path / "out").string();
  o.val_fraction = 0;
  ByteTokenizer byte;
  for (int64_t chunk : {int64_t{0}, int64_t{1}, int64_t{7}, kMinChunkLength - 1, kMaxChunkLength + 1}) {
    o.chunk_length = chunk;
    EXPECT_THROW(prepare_dataset(o, byte), std::runtime_error) << chunk;
  }
  o.chunk_length = kMinChunkLength;
  // Work of a process that no longer runs is removed; a live process's is not.
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  const auto abandoned = tmp.path / ("out.tmp-" + process_tag_of(dead));
  const auto live = tmp.path / ("out.tmp-" + process_tag_of(1));  // pid 1 runs
  for (const auto& d : {abandoned, live}) fs::create_directories(d);
  prepare_dataset(o, byte);
  EXPECT_FALSE(fs::exists(abandoned));
  EXPECT_TRUE(fs::exists(live));
  // A run killed between moving the old dataset aside and moving the new one in: the next run
  // restores the old one (and, with --overwrite, replaces it) instead of losing both.
  const auto old = tmp.path / ("out.old-" + process_tag_of(dead));
  fs::rename(tmp.path / "out", old);
  fs::create_directories(abandoned);
  EXPECT_THROW(prepare_dataset(o, byte), std::runtime_error);  // "already exists": the old one is back
  EXPECT_TRUE(fs::exists(tmp.path / "out" / "zarr.json"));
  EXPECT_FALSE(fs::exists(old));
  EXPECT_FALSE(fs::exists(abandoned));
  fs::rename(tmp.path / "out", old);
  o.overwrite = true;
  prepare_dataset(o, byte);
  EXPECT_TRUE(fs::exists(tmp.path / "out" / "zarr.json"));
  EXPECT_FALSE(fs::exists(old));
  o.overwrite = false;
  // A failed run removes its own temporary folder.
  tmp.write("bad.txt", std::string("\xff\xfe invalid", 10));
  o.output = (tmp.path / "out2").string();
  EXPECT_THROW(prepare_dataset(o, byte), std::runtime_error);
  for (const auto& e : fs::directory_iterator(tmp.path))
    EXPECT_EQ(e.path().filename().string().rfind("out2", 0), std::string::npos) << e.path();
}

TEST(TextDocuments, Latin1ToUtf8) {
  EXPECT_EQ(utf8::from_latin1("caf\xe9"), "caf\xc3\xa9");
  EXPECT_EQ(utf8::from_latin1(std::string("\xff\x7f", 2)), "\xc3\xbf\x7f");
}

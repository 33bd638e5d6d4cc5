// The zarr v3 store: the independently written fixture (tests/data/make_zarr_fixture.py) read
// value for value, writer -> reader round trips for every dtype and several chunk layouts, random
// access and the LRU cache, every corruption and metadata error (one line, naming the file), and
// the writer's guarantees (range checks, zarr.json last, replacing an old array).
#include <blosc.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "data/zarr/zarr.h"
#include "data/zarr/zarr_internal.h"

namespace ttt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kFixture = TTT_SOURCE_DIR "/tests/data/zarr_fixture";

// The fixture's value formulas (kept in sync with make_zarr_fixture.py).
int64_t train_value(int64_t i) { return (i / 128 == 3) ? -1 : (7 * i + 3) % 50000 - 20000; }
int64_t val_value(int64_t i) { return (7919 * i + 3) % 65536; }
int64_t ids_u32_value(int64_t i) { return static_cast<int64_t>((2654435761ull * i + 3) % (1ull << 32)); }
int64_t big_i64_value(int64_t i) { return static_cast<int64_t>(0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i) + 3); }

// Runs `fn`, expecting a one-line ZarrError that contains `file` and every one of `parts`.
void expect_zarr_error(const std::function<void()>& fn, const fs::path& file, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const ZarrError& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    EXPECT_NE(message.find(file.string()), std::string::npos) << "does not name " << file << ": " << message;
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
    return;
  }
  ADD_FAILURE() << "expected a ZarrError naming " << file;
}

std::string read_text(const fs::path& file) { return zarr_detail::read_file_bytes(file); }
void write_text(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
}

// Every test gets its own directory under the system temp dir, removed afterwards.
class ZarrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ttt_test_zarr_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A private copy of one fixture array, to damage.
  fs::path copy_of(const std::string& array) {
    const fs::path copy = dir_ / array;
    fs::copy(kFixture / array, copy, fs::copy_options::recursive);
    return copy;
  }
  // Rewrites the copy's zarr.json after `edit` changes the parsed metadata.
  fs::path with_metadata(const std::string& array, const std::function<void(json&)>& edit) {
    const fs::path copy = copy_of(array);
    json meta = json::parse(read_text(copy / "zarr.json"));
    edit(meta);
    write_text(copy / "zarr.json", meta.dump());
    return copy;
  }

  fs::path dir_;
};

std::vector<int64_t> pattern(const zarr_detail::DataType& type, int64_t length) {
  // Extremes of the type first (they catch sign and width mistakes), then a spread of values.
  std::vector<int64_t> values;
  const int64_t fixed[] = {type.min, type.max, 0, type.min + 1, type.max - 1, 1};
  // The number of values the type holds, minus one (int64's full count does not fit 64 bits).
  const uint64_t span = static_cast<uint64_t>(type.max) - static_cast<uint64_t>(type.min);
  for (int64_t i = 0; i < length; ++i) {
    const uint64_t mixed = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
    const uint64_t offset = span == std::numeric_limits<uint64_t>::max() ? mixed : mixed % (span + 1);
    values.push_back(i < 6 ? fixed[i] : static_cast<int64_t>(static_cast<uint64_t>(type.min) + offset));
  }
  return values;
}

// ---- the independent fixture ----

TEST_F(ZarrTest, FixtureGroupIsRecognised) {
  EXPECT_TRUE(is_zarr_group(kFixture.string()));
  EXPECT_FALSE(is_zarr_group((kFixture / "train").string()));  // an array, not a group
  EXPECT_FALSE(is_zarr_group((dir_ / "nothing").string()));
}

TEST_F(ZarrTest, FixtureTrainInt32ExactValuesAndMissingChunk) {
  ZarrArrayReader reader((kFixture / "train").string());
  EXPECT_EQ(reader.info().length, 1000);
  EXPECT_EQ(reader.info().chunk_length, 128);
  EXPECT_EQ(reader.info().dtype, "int32");
  EXPECT_EQ(reader.info().fill_value, -1);
  ASSERT_FALSE(fs::exists(kFixture / "train" / "c" / "3"));  // the deliberately absent chunk
  const auto values = reader.read(0, 1000);
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(values[i], train_value(i)) << "index " << i;
  EXPECT_EQ(values[384], -1);
  EXPECT_EQ(values[511], -1);
  EXPECT_EQ(values[383], (7 * 383 + 3) % 50000 - 20000);
}

TEST_F(ZarrTest, FixtureOtherDtypesKeyEncodingsAndCodecs) {
  struct Case {
    std::string array, dtype;
    int64_t length, chunk;
    int64_t (*value)(int64_t);
  };
  for (const Case& c : {Case{"val", "uint16", 300, 64, val_value}, Case{"ids_u32", "uint32", 200, 50, ids_u32_value},
                        Case{"big_i64", "int64", 100, 128, big_i64_value}}) {
    ZarrArrayReader reader((kFixture / c.array).string());
    EXPECT_EQ(reader.info().dtype, c.dtype) << c.array;
    EXPECT_EQ(reader.size(), c.length) << c.array;
    EXPECT_EQ(reader.info().chunk_length, c.chunk) << c.array;
    const auto values = reader.read(0, c.length);
    for (int64_t i = 0; i < c.length; ++i) ASSERT_EQ(values[i], c.value(i)) << c.array << " index " << i;
  }
  EXPECT_EQ(ZarrArrayReader((kFixture / "big_i64").string()).info().fill_value, 7);
}

TEST_F(ZarrTest, FixtureRandomReadsSpanningChunks) {
  ZarrArrayReader reader((kFixture / "train").string(), 2);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t start = std::uniform_int_distribution<int64_t>(0, 1000)(rng);
    const int64_t count = std::uniform_int_distribution<int64_t>(0, std::min<int64_t>(400, 1000 - start))(rng);
    const auto got = reader.read(start, count);
    for (int64_t k = 0; k < count; ++k) ASSERT_EQ(got[k], train_value(start + k)) << start << "+" << k;
  }
}

// ---- writer -> reader ----

TEST_F(ZarrTest, RoundTripEveryDtypeChunkSizeAndLength) {
  for (const std::string dtype : {"int32", "uint32", "int64", "uint16"}) {
    const auto& type = *zarr_detail::find_data_type(dtype);
    for (int64_t chunk : {1, 7, 64, 1000}) {
      for (int64_t length : {0, 1, 5, 64, 999, 1000, 2501}) {
        if (chunk == 1 && length > 64) continue;  // thousands of one-value files add nothing
        const fs::path array = dir_ / (dtype + "_" + std::to_string(chunk) + "_" + std::to_string(length));
        const auto values = pattern(type, length);
        ZarrWriteOptions options;
        options.dtype = dtype;
        options.chunk_length = chunk;
        ZarrArrayWriter writer(array.string(), options);
        for (int64_t at = 0, piece = 1; at < length; at += piece, piece = piece * 3 + 1)
          writer.append(values.data() + at, static_cast<size_t>(std::min(piece, length - at)));
        writer.finish();
        EXPECT_EQ(writer.length(), length);

        ZarrArrayReader reader(array.string(), 3);
        const std::string where = array.filename().string();
        EXPECT_EQ(reader.info().dtype, dtype) << where;
        EXPECT_EQ(reader.info().chunk_length, chunk) << where;
        EXPECT_EQ(reader.info().fill_value, 0) << where;
        ASSERT_EQ(reader.size(), length) << where;
        EXPECT_EQ(reader.read(0, length), values) << where;
        const int64_t chunks = (length + chunk - 1) / chunk;
        EXPECT_EQ(std::distance(fs::directory_iterator(array / "c"), fs::directory_iterator()), chunks) << where;
      }
    }
  }
}

TEST_F(ZarrTest, WriterMetadataAndChunksFollowTheSpec) {
  ZarrWriteOptions options;
  options.dtype = "uint16";
  options.chunk_length = 100;
  ZarrArrayWriter writer((dir_ / "a").string(), options);
  const std::vector<int64_t> values(150, 42);
  writer.append(values.data(), values.size());
  writer.finish();
  writer.finish();  // a second finish() changes nothing

  const json meta = json::parse(read_text(dir_ / "a" / "zarr.json"));
  EXPECT_EQ(meta["zarr_format"], 3);
  EXPECT_EQ(meta["node_type"], "array");
  EXPECT_EQ(meta["shape"], json::array({150}));
  EXPECT_EQ(meta["data_type"], "uint16");
  EXPECT_EQ(meta["chunk_grid"]["configuration"]["chunk_shape"], json::array({100}));
  EXPECT_EQ(meta["chunk_key_encoding"]["configuration"]["separator"], "/");
  EXPECT_EQ(meta["codecs"][0]["configuration"]["endian"], "little");
  EXPECT_EQ(meta["codecs"][1]["name"], "blosc");
  EXPECT_EQ(meta["codecs"][1]["configuration"]["cname"], "zstd");
  EXPECT_EQ(meta["codecs"][1]["configuration"]["clevel"], 3);
  EXPECT_EQ(meta["codecs"][1]["configuration"]["shuffle"], "shuffle");
  EXPECT_EQ(meta["codecs"][1]["configuration"]["typesize"], 2);

  // The last chunk is stored full-size: 100 uint16 = 200 bytes, padded with the fill value.
  const std::string frame = read_text(dir_ / "a" / "c" / "1");
  size_t nbytes = 0, cbytes = 0, blocksize = 0, typesize = 0;
  int flags = 0;
  blosc_cbuffer_sizes(frame.data(), &nbytes, &cbytes, &blocksize);
  blosc_cbuffer_metainfo(frame.data(), &typesize, &flags);
  EXPECT_EQ(nbytes, 200u);
  EXPECT_EQ(cbytes, frame.size());
  EXPECT_EQ(typesize, 2u);
  EXPECT_TRUE(flags & BLOSC_DOSHUFFLE);
  EXPECT_STREQ(blosc_cbuffer_complib(frame.data()), "Zstd");
  std::vector<uint8_t> raw(200);
  ASSERT_EQ(blosc_decompress_ctx(frame.data(), raw.data(), raw.size(), 1), 200);
  EXPECT_EQ(raw[0], 42);
  EXPECT_EQ(raw[98], 42);  // element 49, the last real value
  EXPECT_EQ(raw[100], 0);  // element 50, padding
  EXPECT_FALSE(fs::exists(dir_ / "a" / "zarr.json.partial"));
}

TEST_F(ZarrTest, RandomAccessAcrossChunkBoundaries) {
  ZarrWriteOptions options;
  options.chunk_length = 64;
  std::vector<int64_t> values(1000);
  for (int64_t i = 0; i < 1000; ++i) values[i] = i * 1009 % 7919;
  ZarrArrayWriter writer((dir_ / "a").string(), options);
  writer.append(values.data(), values.size());
  writer.finish();
  ZarrArrayReader reader((dir_ / "a").string(), 4);
  const auto expect_range = [&](int64_t start, int64_t count) {
    const std::vector<int64_t> want(values.begin() + start, values.begin() + start + count);
    EXPECT_EQ(reader.read(start, count), want) << start << "+" << count;
  };
  expect_range(63, 2);     // straddles one boundary
  expect_range(0, 1000);   // every chunk
  expect_range(127, 130);  // three chunks
  expect_range(960, 40);   // the partial last chunk
  expect_range(1000, 0);   // empty read at the end is fine
  std::mt19937 rng(11);
  for (int trial = 0; trial < 500; ++trial) {
    const int64_t start = std::uniform_int_distribution<int64_t>(0, 999)(rng);
    expect_range(start, std::uniform_int_distribution<int64_t>(1, std::min<int64_t>(300, 1000 - start))(rng));
  }
}

TEST_F(ZarrTest, LruCacheKeepsRecentChunksAndEvictsTheOldest) {
  ZarrWriteOptions options;
  options.chunk_length = 10;
  std::vector<int64_t> values(30);
  for (int i = 0; i < 30; ++i) values[i] = 100 + i;
  ZarrArrayWriter writer((dir_ / "a").string(), options);
  writer.append(values.data(), values.size());
  writer.finish();
  const fs::path c = dir_ / "a" / "c";

  // Size 1: correct values under constant eviction, including reads spanning chunks.
  ZarrArrayReader one((dir_ / "a").string(), 1);
  for (int pass = 0; pass < 3; ++pass)
    for (int64_t start : {0, 15, 5, 25, 9, 19})
      EXPECT_EQ(one.read(start, 3), std::vector<int64_t>(values.begin() + start, values.begin() + start + 3));
  // Whether a chunk comes from the cache shows once its file is gone (then it reads as fill 0).
  one.read(0, 1);
  fs::remove(c / "0");
  EXPECT_EQ(one.read(0, 1)[0], 100);  // still cached
  one.read(10, 1);                    // evicts chunk 0
  EXPECT_EQ(one.read(0, 1)[0], 0);    // re-read from disk: missing -> fill value

  // Size 2: least recently used goes first.
  ZarrArrayReader two((dir_ / "a").string(), 2);
  two.read(10, 1);
  two.read(20, 1);
  two.read(10, 1);  // chunk 1 is now the most recent
  fs::remove(c / "1");
  fs::remove(c / "2");
  EXPECT_EQ(two.read(20, 1)[0], 120);  // hit
  two.read(0, 1);                      // evicts chunk 1, the least recently used
  EXPECT_EQ(two.read(20, 1)[0], 120);  // chunk 2 survived
  EXPECT_EQ(two.read(10, 1)[0], 0);    // chunk 1 did not
}

// ---- corrupt chunks ----

TEST_F(ZarrTest, TruncatedChunksAreErrorsNamingTheChunk) {
  const fs::path array = copy_of("train");
  const std::string frame = read_text(array / "c" / "1");
  write_text(array / "c" / "1", frame.substr(0, frame.size() - 20));
  write_text(array / "c" / "2", frame.substr(0, 10));  // not even a header
  ZarrArrayReader reader(array.string());
  EXPECT_EQ(reader.read(0, 5),
            std::vector<int64_t>({train_value(0), train_value(1), train_value(2), train_value(3), train_value(4)}));
  expect_zarr_error([&] { reader.read(130, 1); }, array / "c" / "1", {"truncated"});
  expect_zarr_error([&] { reader.read(256, 1); }, array / "c" / "2", {"truncated"});

  const fs::path raw = copy_of("big_i64");  // uncompressed: the size alone gives it away
  write_text(raw / "c" / "0", read_text(raw / "c" / "0").substr(0, 1000));
  expect_zarr_error([&] { ZarrArrayReader(raw.string()).read(0, 1); }, raw / "c" / "0", {"truncated"});
}

TEST_F(ZarrTest, DamagedBloscHeadersAreErrorsNamingTheChunk) {
  // Byte 0: format version; 4..7: uncompressed size; 12..15: compressed size.
  for (int byte : {0, 5, 13, 14}) {
    const fs::path array = dir_ / ("flip" + std::to_string(byte));
    fs::copy(kFixture / "train", array, fs::copy_options::recursive);
    std::string frame = read_text(array / "c" / "0");
    frame[byte] = static_cast<char>(frame[byte] ^ 0x5A);
    write_text(array / "c" / "0", frame);
    expect_zarr_error([&] { ZarrArrayReader(array.string()).read(0, 1); }, array / "c" / "0", {});
  }
  const fs::path trailing = copy_of("val");
  write_text(trailing / "c.2", read_text(trailing / "c.2") + "xx");
  expect_zarr_error([&] { ZarrArrayReader(trailing.string()).read(130, 1); }, trailing / "c.2", {"after the end"});
}

TEST_F(ZarrTest, WrongDecompressedSizeIsAnError) {
  // The chunks hold 128 int32 = 512 bytes; metadata claiming 256-element chunks must not accept them.
  const fs::path array =
      with_metadata("train", [](json& m) { m["chunk_grid"]["configuration"]["chunk_shape"] = {256}; });
  expect_zarr_error([&] { ZarrArrayReader(array.string()).read(0, 1); }, array / "c" / "0",
                    {"decompresses to 512 bytes, expected 1024"});
  const fs::path directory = copy_of("ids_u32");  // a directory where a chunk file should be
  fs::remove(directory / "1");
  fs::create_directory(directory / "1");
  expect_zarr_error([&] { ZarrArrayReader(directory.string()).read(50, 1); }, directory / "1", {"not a regular file"});
}

// ---- metadata ----

TEST_F(ZarrTest, InvalidMetadataIsRejectedNamingZarrJson) {
  struct Case {
    std::string name;
    std::function<void(json&)> edit;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"format2", [](json& m) { m["zarr_format"] = 2; }, "zarr_format is 2"},
      {"group", [](json& m) { m["node_type"] = "group"; }, "node_type"},
      {"shape2d",
       [](json& m) {
         m["shape"] = {10, 10};
       },
       "only 1-D"},
      {"negative", [](json& m) { m["shape"] = {-5}; }, "negative"},
      {"noshape", [](json& m) { m.erase("shape"); }, "missing \"shape\""},
      {"float32", [](json& m) { m["data_type"] = "float32"; }, "unsupported data_type 'float32'"},
      {"int8", [](json& m) { m["data_type"] = "int8"; }, "unsupported data_type"},
      {"nogrid", [](json& m) { m.erase("chunk_grid"); }, "missing \"chunk_grid\""},
      {"chunk0", [](json& m) { m["chunk_grid"]["configuration"]["chunk_shape"] = {0}; }, "chunk_shape[0] is 0"},
      {"negchunk", [](json& m) { m["chunk_grid"]["configuration"]["chunk_shape"] = {-128}; }, "negative"},
      {"hugechunk", [](json& m) { m["chunk_grid"]["configuration"]["chunk_shape"] = {int64_t{1} << 40}; }, "too large"},
      {"grid", [](json& m) { m["chunk_grid"]["name"] = "rectilinear"; }, "unsupported chunk_grid"},
      {"gzip",
       [](json& m) {
         m["codecs"][1] = {{"name", "gzip"}, {"configuration", {{"level", 5}}}};
       },
       "unsupported codec 'gzip'"},
      {"crc",
       [](json& m) {
         m["codecs"].push_back({{"name", "crc32c"}});
       },
       "unsupported codec 'crc32c'"},
      {"shard", [](json& m) { m["codecs"][0]["name"] = "sharding_indexed"; }, "sharding_indexed"},
      {"cname", [](json& m) { m["codecs"][1]["configuration"]["cname"] = "brotli"; }, "blosc cname 'brotli'"},
      {"shuffle", [](json& m) { m["codecs"][1]["configuration"]["shuffle"] = "twice"; }, "unsupported blosc shuffle"},
      {"clevel", [](json& m) { m["codecs"][1]["configuration"]["clevel"] = 12; }, "clevel 12"},
      {"endian", [](json& m) { m["codecs"][0]["configuration"]["endian"] = "middle"; }, "endian 'middle'"},
      {"noendian", [](json& m) { m["codecs"][0].erase("configuration"); }, "no \"endian\""},
      {"nocodecs", [](json& m) { m["codecs"] = json::array(); }, "codecs"},
      {"transformer",
       [](json& m) {
         m["storage_transformers"] = {{{"name", "x"}}};
       },
       "storage_transformers"},
      {"separator", [](json& m) { m["chunk_key_encoding"]["configuration"]["separator"] = "/../"; }, "separator"},
      {"keyenc", [](json& m) { m["chunk_key_encoding"]["name"] = "custom"; }, "chunk_key_encoding 'custom'"},
      {"fillfloat", [](json& m) { m["fill_value"] = 1.5; }, "fill_value must be an integer"},
      {"fillrange", [](json& m) { m["fill_value"] = int64_t{1} << 40; }, "does not fit int32"},
      {"unknown", [](json& m) { m["mystery"] = 1; }, "unsupported metadata field \"mystery\""},
      {"dimnames",
       [](json& m) {
         m["dimension_names"] = {"a", "b"};
       },
       "dimension_names"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path array = dir_ / c.name;
    fs::copy(kFixture / "train", array, fs::copy_options::recursive);
    json meta = json::parse(read_text(array / "zarr.json"));
    c.edit(meta);
    write_text(array / "zarr.json", meta.dump());
    expect_zarr_error([&] { ZarrArrayReader reader(array.string()); }, array / "zarr.json", {c.expect});
  }
}

TEST_F(ZarrTest, BadJsonAndMissingMetadataAreErrors) {
  const fs::path array = copy_of("train");
  write_text(array / "zarr.json", read_text(array / "zarr.json").substr(0, 60));
  expect_zarr_error([&] { ZarrArrayReader reader(array.string()); }, array / "zarr.json", {"invalid JSON"});
  write_text(array / "zarr.json", "[1, 2]");
  expect_zarr_error([&] { ZarrArrayReader reader(array.string()); }, array / "zarr.json", {"JSON object"});
  // Found by fuzz_zarr_metadata: a number past the double range escaped as a raw JSON exception.
  write_text(array / "zarr.json", "{\"shape\": [-4.4e444]}");
  expect_zarr_error([&] { ZarrArrayReader reader(array.string()); }, array / "zarr.json", {"invalid JSON"});
  expect_zarr_error([&] { ZarrArrayReader reader((dir_ / "none").string()); }, dir_ / "none" / "zarr.json",
                    {"not found"});
}

TEST_F(ZarrTest, OptionalExtensionFieldsAreAccepted) {
  const fs::path array = with_metadata("train", [](json& m) {
    m["my_extension"] = {{"must_understand", false}, {"anything", 1}};
    m["dimension_names"] = {nullptr};
  });
  EXPECT_EQ(ZarrArrayReader(array.string()).read(0, 1)[0], train_value(0));
}

TEST_F(ZarrTest, ChunkKeysCannotEscapeTheArray) {
  const fs::path array = dir_ / "a";
  EXPECT_EQ(zarr_detail::resolve_chunk_key(array, "c/5"), array / "c" / "5");
  EXPECT_EQ(zarr_detail::chunk_path(array, "c.", 12), array / "c.12");
  for (const std::string key : {"../x", "c/../../x", "/etc/passwd", "..", ""})
    expect_zarr_error([&] { zarr_detail::resolve_chunk_key(array, key); }, array, {"outside the array"});
}

TEST_F(ZarrTest, OutOfRangeReadsAreErrorsNamingTheArray) {
  ZarrArrayReader reader((kFixture / "train").string());
  const fs::path meta = kFixture / "train" / "zarr.json";
  for (const auto& [start, count] : std::vector<std::pair<int64_t, int64_t>>{
           {-1, 1}, {990, 11}, {0, -1}, {1001, 0}, {0, std::numeric_limits<int64_t>::max()}})
    expect_zarr_error([&, s = start, n = count] { reader.read(s, n); }, meta, {"outside the array of length 1000"});
  EXPECT_TRUE(reader.read(1000, 0).empty());
}

// ---- writer guarantees ----

TEST_F(ZarrTest, WriterRejectsValuesThatDoNotFit) {
  for (const std::string dtype : {"int32", "uint32", "uint16"}) {
    const auto& type = *zarr_detail::find_data_type(dtype);
    ZarrWriteOptions options;
    options.dtype = dtype;
    options.chunk_length = 4;
    const fs::path array = dir_ / dtype;
    ZarrArrayWriter writer(array.string(), options);
    const std::vector<int64_t> good = {type.min, type.max, 3};
    writer.append(good.data(), good.size());
    for (int64_t bad : {type.min - 1, type.max + 1}) {
      const std::vector<int64_t> batch = {5, bad};
      expect_zarr_error([&] { writer.append(batch.data(), batch.size()); }, array, {"does not fit " + dtype});
    }
    writer.finish();  // the rejected batches left nothing behind
    EXPECT_EQ(ZarrArrayReader(array.string()).read(0, 3), good) << dtype;
  }
}

TEST_F(ZarrTest, WriterRejectsBadOptionsAndLateAppends) {
  const auto make = [&](const std::string& dtype, int64_t chunk, int clevel) {
    ZarrWriteOptions options;
    options.dtype = dtype;
    options.chunk_length = chunk;
    options.clevel = clevel;
    ZarrArrayWriter writer((dir_ / "a").string(), options);
  };
  expect_zarr_error([&] { make("float32", 10, 3); }, dir_ / "a", {"unsupported data_type"});
  expect_zarr_error([&] { make("int32", 0, 3); }, dir_ / "a", {"chunk length"});
  expect_zarr_error([&] { make("int32", 10, 10); }, dir_ / "a", {"clevel"});
  ZarrArrayWriter writer((dir_ / "b").string(), ZarrWriteOptions{});
  writer.finish();
  const int64_t one = 1;
  expect_zarr_error([&] { writer.append(&one, 1); }, dir_ / "b", {"after finish"});
  EXPECT_EQ(ZarrArrayReader((dir_ / "b").string()).size(), 0);
}

TEST_F(ZarrTest, UnfinishedWriterLeavesNoMetadata) {
  ZarrWriteOptions options;
  options.chunk_length = 8;
  {
    ZarrArrayWriter writer((dir_ / "a").string(), options);
    const std::vector<int64_t> values(50, 9);
    writer.append(values.data(), values.size());
  }                                                    // destroyed without finish(), as after an exception
  EXPECT_TRUE(fs::exists(dir_ / "a" / "c" / "5"));     // full chunks were written...
  EXPECT_FALSE(fs::exists(dir_ / "a" / "zarr.json"));  // ...but nothing claims to be an array
  expect_zarr_error([&] { ZarrArrayReader reader((dir_ / "a").string()); }, dir_ / "a" / "zarr.json", {"not found"});
}

TEST_F(ZarrTest, WriterReplacesAnExistingArray) {
  ZarrWriteOptions options;
  options.chunk_length = 4;
  const std::vector<int64_t> long_values(40, 1), short_values = {7, 8, 9, 10, 11};
  ZarrArrayWriter first((dir_ / "a").string(), options);
  first.append(long_values.data(), long_values.size());
  first.finish();
  ZarrArrayWriter second((dir_ / "a").string(), options);
  EXPECT_FALSE(fs::exists(dir_ / "a" / "zarr.json"));  // the old array stops looking valid at once
  second.append(short_values.data(), short_values.size());
  second.finish();
  EXPECT_EQ(ZarrArrayReader((dir_ / "a").string()).read(0, 5), short_values);
  EXPECT_FALSE(fs::exists(dir_ / "a" / "c" / "9"));  // no stale chunks
}

TEST_F(ZarrTest, GroupMetadata) {
  write_zarr_group((dir_ / "g").string(), R"({"tokenizer": "bytes", "documents": 3})");
  EXPECT_TRUE(is_zarr_group((dir_ / "g").string()));
  const json meta = json::parse(read_text(dir_ / "g" / "zarr.json"));
  EXPECT_EQ(meta["node_type"], "group");
  EXPECT_EQ(meta["attributes"]["documents"], 3);
  expect_zarr_error([&] { write_zarr_group((dir_ / "h").string(), "{oops"); }, dir_ / "h" / "zarr.json",
                    {"not valid JSON"});
  expect_zarr_error([&] { write_zarr_group((dir_ / "h").string(), "[1]"); }, dir_ / "h" / "zarr.json", {"JSON object"});
  write_text(dir_ / "g" / "zarr.json", "{not json");
  EXPECT_FALSE(is_zarr_group((dir_ / "g").string()));
}

}  // namespace
}  // namespace ttt

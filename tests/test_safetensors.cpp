// The safetensors reader and writer (util/safetensors): round trips, and damaged or hostile files
// that are errors naming the file before anything is allocated.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/test_util.h"
#include "util/file_io.h"
#include "util/safetensors.h"

using namespace ttt;
using ttt::testing::expect_one_line_error;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) { return ttt::testing::fresh_temp_dir("safetensors_" + name); }

// A safetensors file written by hand: the header text, then `data`.
void write_raw_safetensors(const fs::path& path, const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  std::ofstream(path, std::ios::binary) << bytes << header << data;
}

}  // namespace

TEST(Safetensors, RoundTripKeepsDtypesShapesValuesAndMetadata) {
  auto dir = temp_dir("st");
  std::vector<std::pair<std::string, torch::Tensor>> in = {{"a", torch::randn({3, 4})},
                                                           {"b", torch::randn({5}).to(torch::kBFloat16)},
                                                           {"c", torch::arange(7, torch::kInt64)},
                                                           {"d", torch::tensor(3.5, torch::kFloat64)}};
  save_safetensors((dir / "x.safetensors").string(), in, {{"k", "v"}});
  auto out = load_safetensors((dir / "x.safetensors").string());
  ASSERT_EQ(out.tensors.size(), 4u);
  for (const auto& [name, t] : in) {
    EXPECT_EQ(out.tensors.at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(out.tensors.at(name), t)) << name;
  }
  EXPECT_EQ(out.metadata.at("k"), "v");
  // Header layout: 8-byte little-endian length, then JSON starting with '{'.
  std::ifstream f(dir / "x.safetensors", std::ios::binary);
  unsigned char head[9];
  f.read(reinterpret_cast<char*>(head), 9);
  EXPECT_EQ(head[8], '{');
  fs::remove_all(dir);
}

TEST(Safetensors, EmptyTensorsLoad) {
  // Found by fuzz_safetensors: copying the bytes of an empty tensor passed a null pointer to memcpy.
  auto dir = temp_dir("empty");
  const auto path = dir / "e.safetensors";
  save_safetensors(path.string(), {{"e", torch::zeros({0, 4})}, {"s", torch::ones({2})}});
  for (const auto& file : {load_safetensors(path.string()), parse_safetensors(read_file(path.string()), "e")}) {
    EXPECT_EQ(file.tensors.at("e").sizes(), (std::vector<int64_t>{0, 4}));
    EXPECT_TRUE(torch::equal(file.tensors.at("s"), torch::ones({2})));
  }
  fs::remove_all(dir);
}

TEST(Safetensors, TruncatedOrCorruptFilesAreErrorsNamingTheFile) {
  auto dir = temp_dir("st_bad");
  const auto path = (dir / "x.safetensors").string();
  save_safetensors(path, {{"a", torch::randn({64})}});
  const auto size = fs::file_size(path);
  fs::resize_file(path, size - 10);
  try {
    load_safetensors(path);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::ofstream(path, std::ios::binary) << std::string("\x04\0\0\0\0\0\0\0nope", 12);
  EXPECT_THROW(load_safetensors(path), std::runtime_error);
  fs::remove_all(dir);
}

TEST(Safetensors, HostileHeadersAreErrorsBeforeAnyAllocation) {
  // bad-input.md #7: a shape claiming terabytes, dtypes and ranges that do not match, overlaps and
  // a non-string metadata value are errors naming the file and tensor, found from the header and
  // the file size alone.
  auto dir = temp_dir("st_hostile");
  const auto path = dir / "x.safetensors";
  const std::string data(16, '\0');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"a":{"dtype":"F32","shape":[1099511627776,1024],"data_offsets":[0,16]}})", "tensor 'a'"},
      {R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,16]}})", "tensor 'a'"},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,1000]}})", "outside"},
      {R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,16]}})", "does not match its shape"},
      {R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", "not a size"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       "overlap"},
      {R"({"a":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}})", "unsupported dtype"},
      {R"({"__metadata__":{"step":7},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "__metadata__"},
      {R"({"__metadata__":[1],"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "__metadata__"},
      {R"({"a":7})", "tensor 'a'"},
      {R"([1,2])", "not a JSON object"},
  };
  for (const auto& [header, part] : cases) {
    SCOPED_TRACE(header);
    write_raw_safetensors(path, header, data);
    expect_one_line_error([&] { load_safetensors(path.string()); }, {path.string(), part});
    expect_one_line_error([&] { parse_safetensors(read_file(path), "in-memory"); }, {"in-memory", part});
  }
  fs::remove_all(dir);
}

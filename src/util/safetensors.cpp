#include "util/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/strings.h"

namespace ttt {
namespace {

struct DtypeName {
  torch::ScalarType type;
  const char* name;
  int size;  // bytes per element
};
constexpr DtypeName kDtypes[] = {{torch::kFloat32, "F32", 4},   {torch::kFloat64, "F64", 8},
                                 {torch::kBFloat16, "BF16", 2}, {torch::kFloat16, "F16", 2},
                                 {torch::kInt64, "I64", 8},     {torch::kInt32, "I32", 4},
                                 {torch::kInt16, "I16", 2},     {torch::kInt8, "I8", 1},
                                 {torch::kUInt8, "U8", 1},      {torch::kBool, "BOOL", 1}};
constexpr size_t kMaxDims = 8;
constexpr uint64_t kMaxExtent = uint64_t{1} << 40;

}  // namespace

const char* safetensors_dtype_name(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  throw std::runtime_error(std::string("safetensors: unsupported dtype ") + c10::toString(t));
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  int64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
    header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(t);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the format allows padding the header to 8 bytes
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  uint64_t n = text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xFF);
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : data)
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
  out.flush();
  if (!out) throw std::runtime_error("write failed: " + path + ": " + std::strerror(errno));
}

namespace {

struct Entry {
  std::string name;
  const DtypeName* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

// The 8-byte little-endian header length.
uint64_t header_length(const unsigned char* bytes) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  return n;
}

// The entries of a header, every one checked against `data_size` bytes of data: no allocation
// here depends on a size the file claims.
std::vector<Entry> parse_header(const std::string& text, uint64_t data_size, const std::string& name,
                                std::map<std::string, std::string>& metadata) {
  auto fail = [&](const std::string& what) { return std::runtime_error(single_line(name + ": " + what)); };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw fail(std::string("bad header: ") + e.what());
  }
  if (!header.is_object()) throw fail("bad header: not a JSON object");
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const auto& e = it.value();
    if (it.key() == "__metadata__") {
      if (!e.is_object()) throw fail("__metadata__ is not an object");
      for (auto m = e.begin(); m != e.end(); ++m) {
        if (!m.value().is_string()) throw fail("__metadata__ value '" + m.key() + "' is not a string");
        metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + it.key() + "': ";
    if (!e.is_object()) throw fail(where + "entry is not an object");
    Entry entry;
    entry.name = it.key();
    const auto dtype = e.find("dtype");
    if (dtype == e.end() || !dtype->is_string()) throw fail(where + "no dtype");
    for (const auto& candidate : kDtypes)
      if (*dtype == candidate.name) entry.dtype = &candidate;
    if (entry.dtype == nullptr) throw fail(where + "unsupported dtype " + dtype->dump());
    const auto shape = e.find("shape");
    if (shape == e.end() || !shape->is_array() || shape->size() > kMaxDims)
      throw fail(where + "no shape (a list of at most 8 sizes)");
    // The byte count, computed so that no product can overflow: every size is bounded by the data.
    // The product of the non-zero sizes is bounded too (LibTorch refuses a shape whose sizes
    // overflow, even with a zero among them).
    uint64_t bytes = static_cast<uint64_t>(entry.dtype->size), nonzero = 1;
    for (const auto& extent : *shape) {
      if (!extent.is_number_unsigned()) throw fail(where + "shape holds " + extent.dump() + ", not a size");
      const uint64_t n = extent.get<uint64_t>();
      if (n > kMaxExtent) throw fail(where + "shape holds a size of " + std::to_string(n));
      if (n != 0 && nonzero > kMaxExtent / n) throw fail(where + "shape " + shape->dump() + " is too large");
      if (n != 0) nonzero *= n;
      if (n != 0 && bytes > data_size / n)
        bytes = data_size + 1;  // more than the file holds: an error below
      else
        bytes *= n;
      entry.shape.push_back(static_cast<int64_t>(n));
    }
    const auto range = e.find("data_offsets");
    if (range == e.end() || !range->is_array() || range->size() != 2 || !(*range)[0].is_number_unsigned() ||
        !(*range)[1].is_number_unsigned())
      throw fail(where + "data_offsets is not a pair of offsets");
    entry.begin = (*range)[0].get<uint64_t>();
    entry.end = (*range)[1].get<uint64_t>();
    if (entry.end > data_size || entry.begin > entry.end)
      throw fail(where + "byte range [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) +
                 ") lies outside the " + std::to_string(data_size) + " bytes of data (truncated file?)");
    if (entry.end - entry.begin != bytes)
      throw fail(where + "byte range of " + std::to_string(entry.end - entry.begin) +
                 " bytes does not match its shape " + shape->dump() + " of " + entry.dtype->name);
    entries.push_back(std::move(entry));
  }
  // No two tensors share bytes (an empty tensor has none to share).
  std::vector<const Entry*> by_offset;
  for (const auto& e : entries)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      throw fail("tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap");
  return entries;
}

}  // namespace

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& name) {
  if (bytes.size() < 8) throw std::runtime_error(name + ": truncated (no header length)");
  const uint64_t n = header_length(reinterpret_cast<const unsigned char*>(bytes.data()));
  if (n > bytes.size() - 8) throw std::runtime_error(name + ": truncated (header of " + std::to_string(n) + " bytes)");
  SafetensorsFile file;
  const uint64_t data_start = 8 + n, data_size = bytes.size() - data_start;
  for (const auto& e : parse_header(bytes.substr(8, n), data_size, name, file.metadata)) {
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), bytes.data() + data_start + e.begin, e.end - e.begin);
    file.tensors[e.name] = t;
  }
  return file;
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  const int64_t file_size = in.tellg();
  in.seekg(0);
  auto fail = [&](const std::string& what) { return std::runtime_error(path + ": " + what); };
  if (file_size < 8) throw fail("truncated (no header length)");
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  const uint64_t n = header_length(len);
  if (n > static_cast<uint64_t>(file_size - 8)) throw fail("truncated (header of " + std::to_string(n) + " bytes)");
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  const uint64_t data_start = 8 + n, data_size = static_cast<uint64_t>(file_size) - data_start;
  SafetensorsFile file;
  for (const auto& e : parse_header(text, data_size, path, file.metadata)) {
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    if (e.end > e.begin) {  // an empty tensor has no storage to read into
      in.seekg(static_cast<std::streamoff>(data_start + e.begin));
      in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
      if (!in) throw fail("tensor '" + e.name + "': truncated data");
    }
    file.tensors[e.name] = t;
  }
  return file;
}

}  // namespace ttt

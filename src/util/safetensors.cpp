#include "util/safetensors.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace ttt {
namespace {

struct DtypeName {
  torch::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {{torch::kFloat32, "F32"}, {torch::kFloat64, "F64"}, {torch::kBFloat16, "BF16"},
                                 {torch::kFloat16, "F16"}, {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
                                 {torch::kInt16, "I16"},   {torch::kInt8, "I8"},     {torch::kUInt8, "U8"},
                                 {torch::kBool, "BOOL"}};

const char* dtype_name(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  throw std::runtime_error(std::string("safetensors: unsupported dtype ") + c10::toString(t));
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  int64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
    header[name] = {{"dtype", dtype_name(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
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

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot read " + path);
  const int64_t file_size = in.tellg();
  in.seekg(0);
  auto fail = [&](const std::string& what) { return std::runtime_error(path + ": " + what); };
  if (file_size < 8) throw fail("truncated (no header length)");
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > static_cast<uint64_t>(file_size - 8)) throw fail("truncated (header of " + std::to_string(n) + " bytes)");
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw fail(std::string("bad header: ") + e.what());
  }
  if (!header.is_object()) throw fail("bad header: not a JSON object");
  const int64_t data_start = 8 + static_cast<int64_t>(n), data_size = file_size - data_start;
  SafetensorsFile file;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      for (auto m = it.value().begin(); m != it.value().end(); ++m) file.metadata[m.key()] = m.value().get<std::string>();
      continue;
    }
    const auto& e = it.value();
    try {
      const std::string dtype = e.at("dtype").get<std::string>();
      const auto shape = e.at("shape").get<std::vector<int64_t>>();
      const auto range = e.at("data_offsets").get<std::vector<int64_t>>();
      const DtypeName* d = nullptr;
      for (const auto& candidate : kDtypes)
        if (dtype == candidate.name) d = &candidate;
      if (d == nullptr) throw fail("tensor '" + it.key() + "': unsupported dtype " + dtype);
      auto t = torch::empty(shape, torch::TensorOptions().dtype(d->type));
      const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
      if (range.size() != 2 || range[0] < 0 || range[1] - range[0] != bytes || range[1] > data_size)
        throw fail("tensor '" + it.key() + "': byte range does not match its shape or the file size");
      in.seekg(data_start + range[0]);
      in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes));
      if (!in) throw fail("tensor '" + it.key() + "': truncated data");
      file.tensors[it.key()] = t;
    } catch (const nlohmann::json::exception& ex) {
      throw fail("tensor '" + it.key() + "': bad header entry (" + ex.what() + ")");
    }
  }
  return file;
}

}  // namespace ttt

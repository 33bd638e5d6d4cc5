// zarr.json: parsing and validation of array metadata (zarr v3 spec, the subset used for 1-D
// integer token arrays), the metadata our writer emits, and group metadata.
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "data/zarr/zarr_internal.h"
#include "util/file_io.h"

namespace ttt::zarr_detail {
namespace {

using json = nlohmann::json;

// Reads an integer field; JSON floats, strings, or unsigned values past int64 are rejected
// rather than silently converted.
int64_t integer_of(const json& value, const std::string& what, const fs::path& file) {
  if (!value.is_number_integer()) throw error_at(file, what + " must be an integer");
  if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    throw error_at(file, what + " is too large");
  return value.get<int64_t>();
}

const std::string& string_of(const json& value, const std::string& what, const fs::path& file) {
  if (!value.is_string()) throw error_at(file, what + " must be a string");
  return value.get_ref<const std::string&>();
}

const json& member(const json& object, const std::string& key, const std::string& where, const fs::path& file) {
  auto it = object.find(key);
  if (it == object.end()) throw error_at(file, "missing \"" + key + "\"" + where);
  return *it;
}

json parse_json(const std::string& text, const fs::path& file) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // a syntax error, or a number past the double range
    throw error_at(file, std::string("invalid JSON: ") + e.what());
  }
}

// A one-element integer list such as "shape": [N] or "chunk_shape": [C].
int64_t single_extent(const json& value, const std::string& what, const fs::path& file) {
  if (!value.is_array()) throw error_at(file, what + " must be a list");
  if (value.size() != 1)
    throw error_at(file, what + " has " + std::to_string(value.size()) + " dimensions; only 1-D arrays are supported");
  const int64_t extent = integer_of(value[0], what + "[0]", file);
  if (extent < 0) throw error_at(file, what + "[0] is negative (" + std::to_string(extent) + ")");
  return extent;
}

// Codecs may be written as a bare name or as {"name": ..., "configuration": {...}}.
std::pair<std::string, json> codec_of(const json& value, const fs::path& file) {
  if (value.is_string()) return {value.get<std::string>(), json::object()};
  if (!value.is_object()) throw error_at(file, "each codec must be an object");
  const std::string name = string_of(member(value, "name", " in a codec", file), "codec name", file);
  json configuration = json::object();
  if (auto it = value.find("configuration"); it != value.end()) {
    if (!it->is_object()) throw error_at(file, "codec '" + name + "' configuration must be an object");
    configuration = *it;
  }
  return {name, configuration};
}

void parse_bytes_codec(const json& configuration, const fs::path& file, ArrayLayout& layout) {
  auto it = configuration.find("endian");
  // The spec makes endian mandatory for multi-byte types, and all ours are multi-byte.
  if (it == configuration.end()) throw error_at(file, "bytes codec has no \"endian\"");
  const std::string endian = string_of(*it, "bytes codec endian", file);
  if (endian != "little" && endian != "big") throw error_at(file, "unsupported bytes codec endian '" + endian + "'");
  layout.big_endian = endian == "big";
}

void parse_blosc_codec(const json& configuration, const fs::path& file, ArrayLayout& layout) {
  const std::string where = " in the blosc codec configuration";
  const std::string cname = string_of(member(configuration, "cname", where, file), "blosc cname", file);
  if (!blosc_has_compressor(cname)) throw error_at(file, "unsupported blosc cname '" + cname + "'");
  const int64_t clevel = integer_of(member(configuration, "clevel", where, file), "blosc clevel", file);
  if (clevel < 0 || clevel > 9) throw error_at(file, "blosc clevel " + std::to_string(clevel) + " is not in 0..9");
  const std::string shuffle = string_of(member(configuration, "shuffle", where, file), "blosc shuffle", file);
  if (shuffle != "noshuffle" && shuffle != "shuffle" && shuffle != "bitshuffle")
    throw error_at(file, "unsupported blosc shuffle '" + shuffle + "'");
  // typesize and blocksize only tune compression; decoding reads them from each chunk's header.
  if (auto it = configuration.find("typesize"); it != configuration.end()) {
    const int64_t typesize = integer_of(*it, "blosc typesize", file);
    if (typesize < 1 || typesize > 255)
      throw error_at(file, "blosc typesize " + std::to_string(typesize) + " is not in 1..255");
  }
  if (auto it = configuration.find("blocksize"); it != configuration.end())
    if (integer_of(*it, "blosc blocksize", file) < 0) throw error_at(file, "blosc blocksize is negative");
  layout.compression = Compression::blosc;
  layout.blosc_cname = cname;
  layout.blosc_clevel = static_cast<int>(clevel);
}

// Only the codec chain [bytes] or [bytes, blosc] is supported: array-to-array codecs
// (transpose) and other compressors or checksums are rejected by name.
void parse_codecs(const json& codecs, const fs::path& file, ArrayLayout& layout) {
  if (!codecs.is_array() || codecs.empty()) throw error_at(file, "\"codecs\" must be a non-empty list");
  for (size_t i = 0; i < codecs.size(); ++i) {
    const auto [name, configuration] = codec_of(codecs[i], file);
    if (i == 0 && name == "bytes") {
      parse_bytes_codec(configuration, file, layout);
    } else if (i == 1 && name == "blosc") {
      parse_blosc_codec(configuration, file, layout);
    } else if (name == "sharding_indexed") {
      throw error_at(file, "sharded arrays (codec 'sharding_indexed') are not supported");
    } else {
      throw error_at(file, "unsupported codec '" + name + "' at position " + std::to_string(i) +
                               " (supported: bytes, then optionally blosc)");
    }
  }
}

void parse_chunk_key_encoding(const json& encoding, const fs::path& file, ArrayLayout& layout) {
  if (!encoding.is_object()) throw error_at(file, "\"chunk_key_encoding\" must be an object");
  const std::string name =
      string_of(member(encoding, "name", " in chunk_key_encoding", file), "chunk_key_encoding name", file);
  if (name != "default" && name != "v2") throw error_at(file, "unsupported chunk_key_encoding '" + name + "'");
  std::string separator = name == "default" ? "/" : ".";
  if (auto config = encoding.find("configuration"); config != encoding.end()) {
    if (!config->is_object()) throw error_at(file, "chunk_key_encoding configuration must be an object");
    if (auto it = config->find("separator"); it != config->end())
      separator = string_of(*it, "chunk_key_encoding separator", file);
  }
  if (separator != "/" && separator != ".") throw error_at(file, "unsupported chunk key separator '" + separator + "'");
  // For a 1-D array the v2 key is just the index; the separator only joins dimensions.
  layout.key_prefix = name == "default" ? "c" + separator : "";
}

void parse_chunk_grid(const json& grid, const fs::path& file, ArrayLayout& layout) {
  if (!grid.is_object()) throw error_at(file, "\"chunk_grid\" must be an object");
  const std::string name = string_of(member(grid, "name", " in chunk_grid", file), "chunk_grid name", file);
  if (name != "regular") throw error_at(file, "unsupported chunk_grid '" + name + "'");
  const json& configuration = member(grid, "configuration", " in chunk_grid", file);
  if (!configuration.is_object()) throw error_at(file, "chunk_grid configuration must be an object");
  const int64_t chunk =
      single_extent(member(configuration, "chunk_shape", " in chunk_grid", file), "chunk_shape", file);
  if (chunk == 0) throw error_at(file, "chunk_shape[0] is 0");
  if (chunk > kMaxChunkBytes / layout.dtype.itemsize)
    throw error_at(file, "chunk_shape[0] " + std::to_string(chunk) + " is too large");
  layout.info.chunk_length = chunk;
}

}  // namespace

ZarrError error_at(const fs::path& file, const std::string& what) {
  std::string message = "zarr: " + file.string() + ": " + what;
  for (char& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  return ZarrError(message);
}

const DataType* find_data_type(const std::string& name) {
  static const DataType kTypes[] = {
      {"int32", 4, true, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()},
      {"uint32", 4, false, 0, std::numeric_limits<uint32_t>::max()},
      {"int64", 8, true, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()},
      {"uint16", 2, false, 0, std::numeric_limits<uint16_t>::max()},
  };
  for (const auto& type : kTypes)
    if (type.name == name) return &type;
  return nullptr;
}

ArrayLayout parse_array_metadata(const std::string& text, const fs::path& file) {
  const json root = parse_json(text, file);
  if (!root.is_object()) throw error_at(file, "metadata must be a JSON object");
  const int64_t format = integer_of(member(root, "zarr_format", "", file), "zarr_format", file);
  if (format != 3) throw error_at(file, "zarr_format is " + std::to_string(format) + ", expected 3");
  const std::string node_type = string_of(member(root, "node_type", "", file), "node_type", file);
  if (node_type != "array") throw error_at(file, "node_type is '" + node_type + "', expected 'array'");

  // The spec: unknown top-level fields must be refused unless they say must_understand: false.
  static const std::set<std::string> kKnown = {
      "zarr_format",        "node_type",  "shape",  "data_type",  "chunk_grid",
      "chunk_key_encoding", "fill_value", "codecs", "attributes", "storage_transformers",
      "dimension_names"};
  for (const auto& [key, value] : root.items()) {
    if (kKnown.count(key)) continue;
    const bool optional = value.is_object() && value.contains("must_understand") && value["must_understand"] == false;
    if (!optional) throw error_at(file, "unsupported metadata field \"" + key + "\"");
  }

  ArrayLayout layout;
  const std::string dtype = string_of(member(root, "data_type", "", file), "data_type", file);
  const DataType* type = find_data_type(dtype);
  if (!type) throw error_at(file, "unsupported data_type '" + dtype + "' (supported: int32, uint32, int64, uint16)");
  layout.dtype = *type;
  layout.info.dtype = type->name;
  layout.info.length = single_extent(member(root, "shape", "", file), "shape", file);
  parse_chunk_grid(member(root, "chunk_grid", "", file), file, layout);
  parse_chunk_key_encoding(member(root, "chunk_key_encoding", "", file), file, layout);

  const int64_t fill = integer_of(member(root, "fill_value", "", file), "fill_value", file);
  if (fill < type->min || fill > type->max)
    throw error_at(file, "fill_value " + std::to_string(fill) + " does not fit " + type->name);
  layout.info.fill_value = fill;
  parse_codecs(member(root, "codecs", "", file), file, layout);

  if (auto it = root.find("storage_transformers"); it != root.end())
    if (!it->is_array() || !it->empty()) throw error_at(file, "storage_transformers are not supported");
  if (auto it = root.find("attributes"); it != root.end() && !it->is_object())
    throw error_at(file, "\"attributes\" must be an object");
  if (auto it = root.find("dimension_names"); it != root.end()) {
    if (!it->is_array() || it->size() != 1 || !((*it)[0].is_string() || (*it)[0].is_null()))
      throw error_at(file, "\"dimension_names\" must be a list of one name or null");
  }
  return layout;
}

std::string array_metadata_json(const ArrayLayout& layout, int blosc_shuffle_typesize) {
  // Same fields and order as zarr-python 3, so the two writers' outputs compare easily.
  nlohmann::ordered_json root;
  root["shape"] = {layout.info.length};
  root["data_type"] = layout.dtype.name;
  root["chunk_grid"] = {{"name", "regular"}, {"configuration", {{"chunk_shape", {layout.info.chunk_length}}}}};
  root["chunk_key_encoding"] = {{"name", "default"}, {"configuration", {{"separator", "/"}}}};
  root["fill_value"] = layout.info.fill_value;
  nlohmann::ordered_json codecs = nlohmann::ordered_json::array();
  codecs.push_back({{"name", "bytes"}, {"configuration", {{"endian", layout.big_endian ? "big" : "little"}}}});
  if (layout.compression == Compression::blosc)
    codecs.push_back({{"name", "blosc"},
                      {"configuration",
                       {{"typesize", blosc_shuffle_typesize},
                        {"cname", layout.blosc_cname},
                        {"clevel", layout.blosc_clevel},
                        {"shuffle", "shuffle"},
                        {"blocksize", 0}}}});
  root["codecs"] = codecs;
  root["attributes"] = nlohmann::ordered_json::object();
  root["zarr_format"] = 3;
  root["node_type"] = "array";
  root["storage_transformers"] = nlohmann::ordered_json::array();
  return root.dump(2) + "\n";
}

std::string read_file_bytes(const fs::path& file) {
  try {
    return read_file(file.string());
  } catch (const std::runtime_error&) {
    throw error_at(file, "cannot open for reading");
  }
}

void write_file_atomically(const fs::path& file, const std::string& bytes) {
  try {
    ttt::write_file_atomically(file.string(), bytes);
  } catch (const std::runtime_error& e) {
    throw ZarrError(std::string("zarr: ") + e.what());
  }
}

}  // namespace ttt::zarr_detail

namespace ttt {

void write_zarr_group(const std::string& dir, const std::string& attributes_json) {
  namespace fs = std::filesystem;
  const fs::path file = fs::path(dir) / "zarr.json";
  nlohmann::ordered_json attributes;
  try {
    attributes = nlohmann::ordered_json::parse(attributes_json);
  } catch (const nlohmann::json::parse_error& e) {
    throw zarr_detail::error_at(file, std::string("group attributes are not valid JSON: ") + e.what());
  }
  if (!attributes.is_object()) throw zarr_detail::error_at(file, "group attributes must be a JSON object");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw zarr_detail::error_at(dir, "cannot create directory: " + ec.message());
  nlohmann::ordered_json root;
  root["attributes"] = attributes;
  root["zarr_format"] = 3;
  root["node_type"] = "group";
  zarr_detail::write_file_atomically(file, root.dump(2) + "\n");
}

bool is_zarr_group(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path file = fs::path(dir) / "zarr.json";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return false;
  try {
    const auto root = nlohmann::json::parse(zarr_detail::read_file_bytes(file));
    return root.is_object() && root.value("zarr_format", nlohmann::json()) == 3 &&
           root.value("node_type", nlohmann::json()) == "group";
  } catch (const std::exception&) {
    return false;  // unreadable or not JSON: not a group
  }
}

}  // namespace ttt

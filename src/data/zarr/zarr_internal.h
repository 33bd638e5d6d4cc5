// Private pieces of the zarr store shared by the reader, the writer and the tests: the parsed
// array metadata, chunk keys, the value <-> byte conversion and the blosc codec. Not part of the
// public API (include data/zarr/zarr.h for that).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/zarr/zarr.h"

namespace ttt::zarr_detail {

namespace fs = std::filesystem;

// The largest chunk we read or write, in bytes: c-blosc 1.x cannot handle more in one buffer,
// and a bigger chunk_shape in metadata is far more likely a mistake than a real layout.
constexpr int64_t kMaxChunkBytes = 2147483647 - 16;

// Builds the one-line ZarrError "zarr: <file>: <what>" (newlines in `what` become spaces so a
// message from a parser can never spread over several lines).
ZarrError error_at(const fs::path& file, const std::string& what);

// The integer data types the store supports, with their value range.
struct DataType {
  std::string name;  // zarr v3 name: int32 | uint32 | int64 | uint16
  int itemsize = 0;  // bytes per element
  bool is_signed = false;
  int64_t min = 0;
  int64_t max = 0;
};
// The type called `name`, or nullptr when it is not one we support.
const DataType* find_data_type(const std::string& name);

enum class Compression { none, blosc };

// Everything needed to locate and decode the chunks of one array.
struct ArrayLayout {
  ZarrArrayInfo info;
  DataType dtype;
  bool big_endian = false;  // bytes codec endian
  Compression compression = Compression::none;
  std::string blosc_cname;  // only for Compression::blosc
  int blosc_clevel = 0;
  // chunk key = key_prefix + decimal index: "c/" (default, "/"), "c." (default, "."), "" (v2).
  std::string key_prefix;
};

// Parses and validates the text of an array's zarr.json; errors name `file`.
ArrayLayout parse_array_metadata(const std::string& text, const fs::path& file);
// The zarr.json text our writer produces for `layout` (default key encoding, bytes + blosc).
std::string array_metadata_json(const ArrayLayout& layout, int blosc_shuffle_typesize);

// Reads a whole file; throws ZarrError naming it when it cannot be read.
std::string read_file_bytes(const fs::path& file);
// Writes `bytes` to `file` through a temporary sibling and a rename, so that readers never see
// a partial file.
void write_file_atomically(const fs::path& file, const std::string& bytes);

// The file of chunk `index`: array_dir / (key_prefix + index). Throws ZarrError if the key
// would resolve outside `array_dir` (an absolute key, or one containing "..").
fs::path chunk_path(const fs::path& array_dir, const std::string& key_prefix, int64_t index);
// The same guard for an arbitrary key, exposed so the tests can feed it hostile keys.
fs::path resolve_chunk_key(const fs::path& array_dir, const std::string& key);

// Element `i` of `bytes` (itemsize-wide, given endianness) widened to int64.
void decode_values(const DataType& dtype, bool big_endian, const uint8_t* bytes, int64_t count, int64_t* out);
// The inverse; values must already be range-checked.
void encode_values(const DataType& dtype, bool big_endian, const int64_t* values, int64_t count, uint8_t* out);

// Decompresses one blosc frame that must be exactly `frame` (no trailing bytes) and must expand
// to exactly `expected_bytes`; errors (invalid header, truncation, wrong size, decoder failure)
// name `file`.
std::vector<uint8_t> blosc_decode(const std::string& frame, size_t expected_bytes, const fs::path& file);
// Compresses with the given compressor, level and byte shuffle of `typesize`-byte elements.
std::string blosc_encode(const uint8_t* data, size_t size, const std::string& cname, int clevel, int typesize);
// Whether this build of c-blosc has the compressor called `cname`.
bool blosc_has_compressor(const std::string& cname);

}  // namespace ttt::zarr_detail

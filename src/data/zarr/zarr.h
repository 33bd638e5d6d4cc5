// Zarr v3 storage of 1-D token arrays, the format of the official datasets: a group directory
// with a `zarr.json` (node_type group) and one array directory per split (`train`, `val`), each
// with its own `zarr.json` and chunk files `c/<i>` encoded by the codec chain
// [bytes (little endian), blosc (zstd, clevel 3, byte shuffle)].
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace ttt {

// A user-facing problem with a zarr store (bad metadata, corrupt or truncated chunk, ...): one
// line that names the file.
class ZarrError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ZarrArrayInfo {
  int64_t length = 0;        // shape[0]
  int64_t chunk_length = 0;  // chunk_grid regular chunk_shape[0]
  std::string dtype;         // int32 | uint32 | int64 | uint16
  int64_t fill_value = 0;
};

// Random access to a 1-D integer array. Chunks are read, checked and decoded on demand and kept
// in a small LRU cache; a chunk file that does not exist reads as fill_value.
class ZarrArrayReader {
 public:
  // `array_dir` holds the array's zarr.json. Throws ZarrError for missing or invalid metadata
  // (unsupported dtype, codec, shape, chunk key encoding, ...).
  explicit ZarrArrayReader(std::string array_dir, size_t cache_chunks = 16);
  const ZarrArrayInfo& info() const { return info_; }
  int64_t size() const { return info_.length; }
  // Values [start, start + count) as int64. Throws ZarrError for out-of-range reads and corrupt
  // or truncated chunks (naming the chunk file).
  void read(int64_t start, int64_t count, int64_t* out);
  std::vector<int64_t> read(int64_t start, int64_t count);
  // The file of the first chunk of the array's shape that is not stored (not a regular file), or
  // "" when all are. Costs one listing of the chunk directory, whatever the shape claims.
  std::string first_missing_chunk() const;

 private:
  const std::vector<int64_t>& chunk(int64_t index);
  std::string dir_;
  ZarrArrayInfo info_;
  struct Codec;
  std::shared_ptr<const Codec> codec_;
  size_t cache_chunks_;
  std::list<int64_t> lru_;
  std::unordered_map<int64_t, std::pair<std::vector<int64_t>, std::list<int64_t>::iterator>> cache_;
};

struct ZarrWriteOptions {
  std::string dtype = "int32";     // int32 | uint32 | int64 | uint16
  int64_t chunk_length = 1 << 20;  // tokens per chunk
  int clevel = 3;                  // blosc zstd level
};

// Streams values into a new array directory; finish() writes zarr.json with the final length.
class ZarrArrayWriter {
 public:
  ZarrArrayWriter(std::string array_dir, ZarrWriteOptions options);
  void append(const int64_t* values, size_t count);  // throws ZarrError if a value does not fit the dtype
  void finish();
  int64_t length() const { return length_; }

 private:
  void flush_chunk();
  std::string dir_;
  ZarrWriteOptions options_;
  std::vector<int64_t> pending_;
  int64_t length_ = 0;
  int64_t chunks_written_ = 0;
  bool finished_ = false;
};

// Writes `dir/zarr.json` for a group (attributes as a JSON object text, "{}" for none).
void write_zarr_group(const std::string& dir, const std::string& attributes_json = "{}");
// Whether `dir/zarr.json` exists and describes a group.
bool is_zarr_group(const std::string& dir);

}  // namespace ttt

// ZarrArrayReader: random access to a 1-D zarr v3 array through a small LRU cache of decoded
// chunks.
#include <algorithm>
#include <limits>
#include <set>

#include "data/zarr/zarr_internal.h"

namespace ttt {

namespace fs = std::filesystem;
using zarr_detail::error_at;

struct ZarrArrayReader::Codec {
  zarr_detail::ArrayLayout layout;
  fs::path dir;
  fs::path metadata_file;
};

ZarrArrayReader::ZarrArrayReader(std::string array_dir, size_t cache_chunks)
    : dir_(std::move(array_dir)), cache_chunks_(std::max<size_t>(cache_chunks, 1)) {
  auto codec = std::make_shared<Codec>();
  codec->dir = dir_;
  codec->metadata_file = codec->dir / "zarr.json";
  std::error_code ec;
  if (!fs::is_regular_file(codec->metadata_file, ec))
    throw error_at(codec->metadata_file, "not found (not a zarr v3 array directory)");
  codec->layout =
      zarr_detail::parse_array_metadata(zarr_detail::read_file_bytes(codec->metadata_file), codec->metadata_file);
  info_ = codec->layout.info;
  codec_ = std::move(codec);
}

namespace {

// Written to avoid overflow: start + count may not fit int64 for a hostile count.
void check_range(int64_t start, int64_t count, int64_t length, const fs::path& metadata_file) {
  if (start < 0 || count < 0 || start > length || count > length - start)
    throw error_at(metadata_file, "read of " + std::to_string(count) + " values at " + std::to_string(start) +
                                      " is outside the array of length " + std::to_string(length));
}

}  // namespace

std::string ZarrArrayReader::first_missing_chunk() const {
  const auto& layout = codec_->layout;
  // ceil(length / chunk), without forming length + chunk for the largest shapes.
  const int64_t chunks = info_.length / info_.chunk_length + (info_.length % info_.chunk_length != 0);
  // The chunk files live in one directory (c/ for the default key encoding, the array directory
  // otherwise): list it once, so a shape claiming 2^53 chunks costs no more than what is stored.
  const fs::path first = zarr_detail::chunk_path(codec_->dir, layout.key_prefix, 0);
  std::set<std::string> stored;
  std::error_code ec;
  for (fs::directory_iterator it(first.parent_path(), ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) stored.insert(it->path().filename().string());
  for (int64_t i = 0; i < chunks; ++i) {
    const fs::path file = zarr_detail::chunk_path(codec_->dir, layout.key_prefix, i);
    if (!stored.count(file.filename().string())) return file.string();
  }
  return "";
}

void ZarrArrayReader::read(int64_t start, int64_t count, int64_t* out) {
  check_range(start, count, info_.length, codec_->metadata_file);
  const int64_t chunk_length = info_.chunk_length;
  int64_t position = start;
  const int64_t end = start + count;
  while (position < end) {
    const int64_t offset = position % chunk_length;
    const int64_t take = std::min(chunk_length - offset, end - position);
    // The reference stays valid until the next chunk() call, which is after the copy.
    const std::vector<int64_t>& values = chunk(position / chunk_length);
    std::copy_n(values.begin() + offset, take, out + (position - start));
    position += take;
  }
}

std::vector<int64_t> ZarrArrayReader::read(int64_t start, int64_t count) {
  check_range(start, count, info_.length, codec_->metadata_file);  // before allocating
  std::vector<int64_t> values(static_cast<size_t>(std::max<int64_t>(count, 0)));
  read(start, count, values.data());
  return values;
}

const std::vector<int64_t>& ZarrArrayReader::chunk(int64_t index) {
  if (auto hit = cache_.find(index); hit != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, hit->second.second);  // most recently used goes first
    return hit->second.first;
  }

  const auto& layout = codec_->layout;
  const int64_t chunk_length = layout.info.chunk_length;
  const size_t chunk_bytes = static_cast<size_t>(chunk_length) * static_cast<size_t>(layout.dtype.itemsize);
  const fs::path file = zarr_detail::chunk_path(codec_->dir, layout.key_prefix, index);
  std::vector<int64_t> values(static_cast<size_t>(chunk_length));

  std::error_code ec;
  const auto status = fs::status(file, ec);
  if (status.type() == fs::file_type::not_found) {
    // zarr semantics: a chunk that was never written (e.g. all fill_value) reads as fill_value.
    std::fill(values.begin(), values.end(), layout.info.fill_value);
  } else {
    if (status.type() != fs::file_type::regular) throw error_at(file, "chunk is not a regular file");
    const std::string stored = zarr_detail::read_file_bytes(file);
    if (layout.compression == zarr_detail::Compression::blosc) {
      const auto decoded = zarr_detail::blosc_decode(stored, chunk_bytes, file);
      zarr_detail::decode_values(layout.dtype, layout.big_endian, decoded.data(), chunk_length, values.data());
    } else {
      if (stored.size() != chunk_bytes)
        throw error_at(file, (stored.size() < chunk_bytes ? "truncated chunk: " : "corrupt chunk: ") +
                                 std::to_string(stored.size()) + " bytes, expected " + std::to_string(chunk_bytes));
      zarr_detail::decode_values(layout.dtype, layout.big_endian, reinterpret_cast<const uint8_t*>(stored.data()),
                                 chunk_length, values.data());
    }
  }

  while (cache_.size() >= cache_chunks_) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(index);
  auto& entry = cache_[index];
  entry.first = std::move(values);
  entry.second = lru_.begin();
  return entry.first;
}

}  // namespace ttt

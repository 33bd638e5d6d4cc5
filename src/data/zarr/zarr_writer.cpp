// ZarrArrayWriter: streams values into a new 1-D zarr v3 array. Chunks are written as they fill
// (each through a temporary name and a rename) and zarr.json comes last, so an interrupted write
// never looks like a valid array.
#include <algorithm>
#include <limits>

#include "data/zarr/zarr_internal.h"

namespace ttt {

namespace fs = std::filesystem;
using zarr_detail::error_at;
using zarr_detail::kMaxChunkBytes;

namespace {

// The fill value of arrays we write; only the padding of the last chunk uses it.
constexpr int64_t kWriterFillValue = 0;

const zarr_detail::DataType& checked_data_type(const std::string& dir, const ZarrWriteOptions& options) {
  const auto* type = zarr_detail::find_data_type(options.dtype);
  if (!type)
    throw error_at(dir, "unsupported data_type '" + options.dtype + "' (supported: int32, uint32, int64, uint16)");
  if (options.chunk_length <= 0 || options.chunk_length > kMaxChunkBytes / type->itemsize)
    throw error_at(dir, "chunk length " + std::to_string(options.chunk_length) + " is not in 1.." +
                            std::to_string(kMaxChunkBytes / type->itemsize));
  if (options.clevel < 0 || options.clevel > 9)
    throw error_at(dir, "blosc clevel " + std::to_string(options.clevel) + " is not in 0..9");
  return *type;
}

zarr_detail::ArrayLayout layout_for(const ZarrWriteOptions& options, const zarr_detail::DataType& type,
                                    int64_t length) {
  zarr_detail::ArrayLayout layout;
  layout.dtype = type;
  layout.info.dtype = type.name;
  layout.info.length = length;
  layout.info.chunk_length = options.chunk_length;
  layout.info.fill_value = kWriterFillValue;
  layout.compression = zarr_detail::Compression::blosc;
  layout.blosc_cname = "zstd";
  layout.blosc_clevel = options.clevel;
  layout.key_prefix = "c/";
  return layout;
}

}  // namespace

ZarrArrayWriter::ZarrArrayWriter(std::string array_dir, ZarrWriteOptions options)
    : dir_(std::move(array_dir)), options_(std::move(options)) {
  checked_data_type(dir_, options_);
  const fs::path dir(dir_);
  // Replacing an array: its metadata goes first so that the directory stops looking valid, then
  // its chunks, which would otherwise mix with ours.
  std::error_code ec;
  fs::remove(dir / "zarr.json", ec);
  if (ec) throw error_at(dir / "zarr.json", "cannot remove the previous metadata: " + ec.message());
  fs::remove_all(dir / "c", ec);
  if (ec) throw error_at(dir / "c", "cannot remove the previous chunks: " + ec.message());
  fs::create_directories(dir / "c", ec);
  if (ec) throw error_at(dir / "c", "cannot create directory: " + ec.message());
  pending_.reserve(static_cast<size_t>(std::min<int64_t>(options_.chunk_length, 1 << 20)));
}

void ZarrArrayWriter::append(const int64_t* values, size_t count) {
  if (finished_) throw error_at(dir_, "append after finish()");
  const auto& type = checked_data_type(dir_, options_);
  // Check the whole batch first so that a rejected batch leaves the writer unchanged.
  for (size_t i = 0; i < count; ++i)
    if (values[i] < type.min || values[i] > type.max)
      throw error_at(dir_, "value " + std::to_string(values[i]) + " at position " +
                               std::to_string(length_ + static_cast<int64_t>(i)) + " does not fit " + type.name);
  for (size_t i = 0; i < count;) {
    const size_t room = static_cast<size_t>(options_.chunk_length) - pending_.size();
    const size_t take = std::min(room, count - i);
    pending_.insert(pending_.end(), values + i, values + i + take);
    i += take;
    length_ += static_cast<int64_t>(take);
    if (pending_.size() == static_cast<size_t>(options_.chunk_length)) flush_chunk();
  }
}

void ZarrArrayWriter::flush_chunk() {
  const auto& type = checked_data_type(dir_, options_);
  // The spec stores every chunk full-size: the last one is padded with the fill value.
  pending_.resize(static_cast<size_t>(options_.chunk_length), kWriterFillValue);
  std::vector<uint8_t> bytes(pending_.size() * static_cast<size_t>(type.itemsize));
  zarr_detail::encode_values(type, /*big_endian=*/false, pending_.data(), static_cast<int64_t>(pending_.size()),
                             bytes.data());
  const std::string frame =
      zarr_detail::blosc_encode(bytes.data(), bytes.size(), "zstd", options_.clevel, type.itemsize);
  zarr_detail::write_file_atomically(zarr_detail::chunk_path(dir_, "c/", chunks_written_), frame);
  chunks_written_ += 1;
  pending_.clear();
}

void ZarrArrayWriter::finish() {
  if (finished_) return;
  if (!pending_.empty()) flush_chunk();
  const auto& type = checked_data_type(dir_, options_);
  const auto layout = layout_for(options_, type, length_);
  zarr_detail::write_file_atomically(fs::path(dir_) / "zarr.json",
                                     zarr_detail::array_metadata_json(layout, type.itemsize));
  finished_ = true;
}

}  // namespace ttt

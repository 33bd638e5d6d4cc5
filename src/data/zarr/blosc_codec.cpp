// The blosc codec (c-blosc 1.x frames) and the bytes codec (fixed-width integers of either
// endianness), plus chunk keys. Only the thread-safe *_ctx entry points of c-blosc are used, so
// no global blosc state is touched.
#include <blosc.h>

#include "data/zarr/zarr_internal.h"

namespace ttt::zarr_detail {
namespace {

template <int Width>
void decode_fixed(bool big_endian, bool is_signed, const uint8_t* bytes, int64_t count, int64_t* out) {
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* p = bytes + i * Width;
    uint64_t value = 0;
    for (int b = 0; b < Width; ++b) value = (value << 8) | p[big_endian ? b : Width - 1 - b];
    if (is_signed && Width < 8) {
      const uint64_t sign_bit = uint64_t{1} << (Width * 8 - 1);
      value = (value ^ sign_bit) - sign_bit;  // sign-extend to 64 bits
    }
    out[i] = static_cast<int64_t>(value);
  }
}

template <int Width>
void encode_fixed(bool big_endian, const int64_t* values, int64_t count, uint8_t* out) {
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t value = static_cast<uint64_t>(values[i]);
    uint8_t* p = out + i * Width;
    for (int b = 0; b < Width; ++b) p[big_endian ? Width - 1 - b : b] = static_cast<uint8_t>(value >> (8 * b));
  }
}

}  // namespace

void decode_values(const DataType& dtype, bool big_endian, const uint8_t* bytes, int64_t count, int64_t* out) {
  switch (dtype.itemsize) {
    case 2:
      return decode_fixed<2>(big_endian, dtype.is_signed, bytes, count, out);
    case 4:
      return decode_fixed<4>(big_endian, dtype.is_signed, bytes, count, out);
    case 8:
      return decode_fixed<8>(big_endian, dtype.is_signed, bytes, count, out);
  }
  throw ZarrError("zarr: internal error: item size " + std::to_string(dtype.itemsize));
}

void encode_values(const DataType& dtype, bool big_endian, const int64_t* values, int64_t count, uint8_t* out) {
  switch (dtype.itemsize) {
    case 2:
      return encode_fixed<2>(big_endian, values, count, out);
    case 4:
      return encode_fixed<4>(big_endian, values, count, out);
    case 8:
      return encode_fixed<8>(big_endian, values, count, out);
  }
  throw ZarrError("zarr: internal error: item size " + std::to_string(dtype.itemsize));
}

fs::path resolve_chunk_key(const fs::path& array_dir, const std::string& key) {
  const fs::path relative(key);
  // Keys are built from integer indices and a validated separator, so this never fires for a
  // well-formed store; it stops a future key scheme (or a bug) from reading outside the array.
  // The check is lexical on purpose: a chunk directory may legitimately be a symlink.
  bool escapes = key.empty() || relative.has_root_name() || relative.has_root_directory();
  for (const auto& part : relative)
    if (part == "..") escapes = true;
  if (escapes) throw error_at(array_dir, "chunk key '" + key + "' resolves outside the array directory");
  return array_dir / relative;
}

fs::path chunk_path(const fs::path& array_dir, const std::string& key_prefix, int64_t index) {
  return resolve_chunk_key(array_dir, key_prefix + std::to_string(index));
}

bool blosc_has_compressor(const std::string& cname) { return blosc_compname_to_compcode(cname.c_str()) >= 0; }

std::vector<uint8_t> blosc_decode(const std::string& frame, size_t expected_bytes, const fs::path& file) {
  if (frame.size() < BLOSC_MIN_HEADER_LENGTH)
    throw error_at(file, "truncated chunk: " + std::to_string(frame.size()) + " bytes, less than a blosc header");
  int version = 0, compressor_version = 0;
  blosc_cbuffer_versions(frame.data(), &version, &compressor_version);
  if (version < 1 || version > BLOSC_VERSION_FORMAT)
    throw error_at(file, "invalid blosc header (format version " + std::to_string(version) + ")");
  size_t nbytes = 0, cbytes = 0, blocksize = 0;
  blosc_cbuffer_sizes(frame.data(), &nbytes, &cbytes, &blocksize);
  // decompress_ctx trusts the header's compressed size, so it must match the file exactly.
  if (cbytes > frame.size())
    throw error_at(file, "truncated chunk (or corrupt blosc header): header says " + std::to_string(cbytes) +
                             " bytes, file has " + std::to_string(frame.size()));
  if (cbytes < frame.size())
    throw error_at(
        file, "corrupt chunk: " + std::to_string(frame.size() - cbytes) + " bytes after the end of the blosc frame");
  if (blosc_cbuffer_validate(frame.data(), frame.size(), &nbytes) != 0) throw error_at(file, "invalid blosc header");
  if (nbytes != expected_bytes)
    throw error_at(
        file, "chunk decompresses to " + std::to_string(nbytes) + " bytes, expected " + std::to_string(expected_bytes));
  std::vector<uint8_t> decoded(expected_bytes);
  const int written = blosc_decompress_ctx(frame.data(), decoded.data(), decoded.size(), 1);
  if (written < 0 || static_cast<size_t>(written) != expected_bytes)
    throw error_at(file, "blosc decompression failed (result " + std::to_string(written) + ")");
  return decoded;
}

std::string blosc_encode(const uint8_t* data, size_t size, const std::string& cname, int clevel, int typesize) {
  std::string frame(size + BLOSC_MAX_OVERHEAD, '\0');
  const int written = blosc_compress_ctx(clevel, BLOSC_SHUFFLE, static_cast<size_t>(typesize), size, data, frame.data(),
                                         frame.size(), cname.c_str(), 0, 1);
  if (written <= 0)
    throw ZarrError("zarr: blosc compression (" + cname + ") failed with result " + std::to_string(written));
  frame.resize(static_cast<size_t>(written));
  return frame;
}

}  // namespace ttt::zarr_detail

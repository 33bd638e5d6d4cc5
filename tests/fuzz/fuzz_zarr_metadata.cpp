// An array's zarr.json.
#include "data/zarr/zarr_internal.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ttt::fuzz::runs_cleanly([&] {
    const auto layout = ttt::zarr_detail::parse_array_metadata(ttt::fuzz::as_string(data, size), "zarr.json");
    ttt::fuzz::require(layout.info.length >= 0 && layout.info.chunk_length > 0, "accepted a bad extent");
    ttt::fuzz::require(layout.info.chunk_length <= ttt::zarr_detail::kMaxChunkBytes / layout.dtype.itemsize,
                       "accepted an oversized chunk");
  });
  return 0;
}

// A chunk file of a token array: a blosc frame that must decode to exactly one chunk.
// Input: 1 byte picks the dtype, 2 bytes the chunk length (values), the rest is the frame.
#include <vector>

#include "data/zarr/zarr_internal.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  static const char* kTypes[] = {"int32", "uint32", "int64", "uint16"};
  const auto* dtype = ttt::zarr_detail::find_data_type(kTypes[data[0] % 4]);
  const int64_t count = 1 + (data[1] | (data[2] << 8));
  const std::string frame = ttt::fuzz::as_string(data + 3, size - 3);
  ttt::fuzz::runs_cleanly([&] {
    const auto bytes = ttt::zarr_detail::blosc_decode(frame, static_cast<size_t>(count * dtype->itemsize), "c/0");
    ttt::fuzz::require(bytes.size() == static_cast<size_t>(count * dtype->itemsize), "decoded a chunk of another size");
    std::vector<int64_t> values(count);
    ttt::zarr_detail::decode_values(*dtype, (data[0] & 4) != 0, bytes.data(), count, values.data());
  });
  return 0;
}

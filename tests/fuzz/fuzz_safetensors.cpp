// Safetensors files (checkpoint weights and optimizer state, decoding states).
#include "fuzz_support.h"
#include "util/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ttt::fuzz::runs_cleanly([&] {
    const auto file = ttt::parse_safetensors(ttt::fuzz::as_string(data, size), "fuzz.safetensors");
    size_t bytes = 0;
    for (const auto& [name, t] : file.tensors) bytes += t.numel() * t.element_size();
    ttt::fuzz::require(bytes <= size, "tensors hold more bytes than the file");
  });
  return 0;
}

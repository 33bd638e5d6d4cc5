// A checkpoint's state.json.
#include "fuzz_support.h"
#include "train/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ttt::fuzz::runs_cleanly([&] {
    const auto state = ttt::parse_checkpoint_state(ttt::fuzz::as_string(data, size), "state.json");
    ttt::fuzz::require(state.step >= -1 && state.loader_position >= 0, "accepted an out-of-range state");
  });
  return 0;
}

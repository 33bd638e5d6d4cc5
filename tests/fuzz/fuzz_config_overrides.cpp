// Command-line words (one per line of the input) composed on the official configuration tree.
#include <vector>

#include "config/loader.h"
#include "fuzz_support.h"
#include "util/strings.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto words = ttt::split(ttt::fuzz::as_string(data, size), '\n');
  if (words.size() > 16) return 0;
  ttt::LoadOptions options;
  options.config_dir = TTT_SOURCE_DIR "/configs";
  ttt::fuzz::runs_cleanly([&] { ttt::load_config(words, options); });
  return 0;
}

// A resolved configuration (a run's or a checkpoint's config.yaml).
#include "config/loader.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ttt::fuzz::runs_cleanly([&] {
    const auto config = ttt::parse_resolved_config(ttt::fuzz::as_string(data, size), "config.yaml");
    // What loads writes back and reloads to the same configuration.
    const std::string yaml = ttt::to_yaml(config);
    ttt::fuzz::require(ttt::to_yaml(ttt::parse_resolved_config(yaml, "again.yaml")) == yaml, "to_yaml round trip");
  });
  return 0;
}

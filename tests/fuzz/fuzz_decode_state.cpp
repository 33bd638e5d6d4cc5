// A generation state file (ttt generate --save-state) for a small TTT-E2E model. A state that
// loads must be usable: reading a token from it and sampling the next one either work or are a
// clean error (a state of absurd but finite values may diverge).
#include <cstdlib>

#include "fuzz_support.h"
#include "infer/sampler.h"
#include "infer/state_file.h"
#include "support/tiny_model.h"

namespace {

struct Model {
  ttt::Config config = ttt::testing::tiny_meta_config();
  ttt::ModelWeights weights = ttt::ModelWeights::initialize(config.model, 7);
  ttt::TttOptions ttt = ttt::TttOptions::for_inference(config);
};

const Model& model() {
  static const Model m;
  return m;
}

}  // namespace

// With TTT_FUZZ_WRITE_SEED=<file>, writes a valid state of the model (the seed corpus) and exits.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);
  if (const char* seed = std::getenv("TTT_FUZZ_WRITE_SEED")) {
    const auto& m = model();
    auto state = ttt::start_decoding(m.config.model, m.ttt, m.weights);
    ttt::read_tokens(m.config.model, m.ttt, m.weights, state, torch::tensor({{0, 3, 5, 7, 2, 9}}, torch::kInt64));
    ttt::save_decode_state(seed, m.config.model, m.ttt, m.weights, state);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& m = model();
  ttt::fuzz::runs_cleanly([&] {
    auto file = ttt::parse_safetensors(ttt::fuzz::as_string(data, size), "state.safetensors");
    auto state = ttt::decode_state_from(file, "state.safetensors", m.config.model, m.ttt, m.weights);
    ttt::read_tokens(m.config.model, m.ttt, m.weights, state, torch::tensor({{4}}, torch::kInt64));
    std::mt19937_64 rng(0);
    const int64_t next = ttt::sample_next_token(state.last_logits[0], state.seen[0], ttt::SamplingOptions{}, rng);
    ttt::fuzz::require(next >= 0 && next < m.config.model.vocab_size, "sampled a token outside the vocabulary");
  });
  return 0;
}

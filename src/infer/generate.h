// Text generation on top of the decoder: sample a token from the state's next-token logits,
// read it into the state (which may take an inner step), repeat until EOS or the token budget;
// and the incremental UTF-8 decoding that lets the CLI stream text as it is generated.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "infer/decoder.h"
#include "infer/sampler.h"

namespace ttt {

struct GenerateOptions {
  SamplingOptions sampling;
  int64_t max_new_tokens = 256;
  uint64_t seed = 0;
  int64_t eos_id = -1;  // generation stops after sampling it (< 0: never)
};

// Generates from a state that has read at least one token (batch 1). Every generated token but
// the last is read into the state (the last one's logits would never be used). `on_token` sees
// each token as soon as it is sampled, EOS included. Returns the generated ids.
std::vector<int64_t> generate_tokens(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                                     DecodeState& state, const GenerateOptions& options,
                                     const std::function<void(int64_t)>& on_token = nullptr);

// Holds back the bytes of an incomplete UTF-8 sequence at the end of what it was given, so text
// streamed token by token never prints half a character. Invalid bytes pass through.
class Utf8Stream {
 public:
  // Returns the bytes that are complete now.
  std::string push(const std::string& bytes);
  // Returns whatever is still held (at the end of the text).
  std::string finish();

 private:
  std::string held_;
};

}  // namespace ttt

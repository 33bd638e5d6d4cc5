#include "infer/generate.h"

#include <stdexcept>

namespace ttt {
namespace {

// Length of a UTF-8 sequence from its first byte; 0 for a continuation or invalid byte.
size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead < 0xE0) return 2;
  if (lead >= 0xE0 && lead < 0xF0) return 3;
  if (lead >= 0xF0 && lead < 0xF5) return 4;
  return 0;
}

}  // namespace

std::vector<int64_t> generate_tokens(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                                     DecodeState& state, const GenerateOptions& options,
                                     const std::function<void(int64_t)>& on_token) {
  if (!state.last_logits.defined())
    throw std::invalid_argument("generation needs a prompt: the state has read no token");
  if (state.last_logits.size(0) != 1) throw std::invalid_argument("generation decodes one sequence (batch 1)");
  check_sampling_options(options.sampling);
  std::mt19937_64 rng(options.seed);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    const int64_t token = sample_next_token(state.last_logits[0], state.seen[0], options.sampling, rng);
    out.push_back(token);
    if (on_token) on_token(token);
    if (token == options.eos_id || i + 1 == options.max_new_tokens) break;
    read_tokens(cfg, ttt, w, state, torch::tensor({token}, torch::kInt64).view({1, 1}));
  }
  return out;
}

std::string Utf8Stream::push(const std::string& bytes) {
  held_ += bytes;
  // Find the start of the last sequence (at most 3 continuation bytes back).
  size_t start = held_.size();
  while (start > 0 && held_.size() - start < 4 && (static_cast<unsigned char>(held_[start - 1]) & 0xC0) == 0x80)
    --start;
  if (start == 0) {
    std::string out;
    out.swap(held_);
    return out;
  }
  const size_t lead = start - 1;
  const size_t need = sequence_length(static_cast<unsigned char>(held_[lead]));
  // Complete, or not a valid start (printed as is): everything goes out.
  if (need == 0 || held_.size() - lead >= need) {
    std::string out;
    out.swap(held_);
    return out;
  }
  std::string out = held_.substr(0, lead);
  held_.erase(0, lead);
  return out;
}

std::string Utf8Stream::finish() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace ttt

#include "infer/state_file.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>

#include "config/fields.h"
#include "util/safetensors.h"
#include "util/strings.h"

namespace ttt {
namespace {

constexpr const char* kFormat = "ttt-decode-state";
constexpr const char* kVersion = "1";

std::string hex64(uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

// FNV-1a over 64-bit words (then the tail bytes): fast enough for every byte of a large model.
uint64_t hash_bytes(const void* data, size_t size, uint64_t h) {
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  const auto* bytes = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    h = (h ^ word) * kPrime;
  }
  for (; i < size; ++i) h = (h ^ bytes[i]) * kPrime;
  return h;
}

// "key: value" lines in the fingerprint's order -> map; the order is kept in `keys`.
std::map<std::string, std::string> parse_lines(const std::string& text, std::vector<std::string>* keys) {
  std::map<std::string, std::string> out;
  for (const auto& line : split(text, '\n')) {
    const auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    out[line.substr(0, colon)] = line.substr(colon + 2);
    if (keys != nullptr) keys->push_back(line.substr(0, colon));
  }
  return out;
}

// One line naming the first field of this model's fingerprint that the state's differs in, or ""
// when none does. Lines the state has and this build does not fingerprint (a field that became
// parity-only, say) do not matter.
std::string first_difference(const std::string& saved, const std::string& current) {
  std::vector<std::string> keys;
  const auto here = parse_lines(current, &keys);
  const auto there = parse_lines(saved, nullptr);
  for (const auto& key : keys) {
    const auto a = there.find(key);
    const std::string was = a == there.end() ? "(absent)" : a->second;
    if (was != here.at(key)) return key + " is " + was + " in the state, " + here.at(key) + " here";
  }
  return "";
}

std::string cache_name(const char* prefix, size_t i, const char* part) {
  return std::string(prefix) + "." + std::to_string(i) + "." + part;
}

torch::Tensor take(SafetensorsFile& file, const std::string& name, const std::string& path) {
  auto it = file.tensors.find(name);
  if (it == file.tensors.end()) throw std::runtime_error("state file " + path + " lacks tensor " + name);
  return it->second;
}

}  // namespace

ModelFingerprint model_fingerprint(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w) {
  Config config;
  config.model = cfg;
  std::ostringstream text;
  for (const auto& line : used_field_lines(config, "model")) text << line << "\n";
  text << "decode.test_time_training: " << (ttt.enabled ? "true" : "false") << "\n";
  if (ttt.enabled) {
    std::vector<std::string> names;
    for (const auto& p : ttt.inner) names.push_back(p.name);
    text << "decode.inner_lr: " << ttt.lr << "\n";
    text << "decode.inner_clip: " << ttt.clip << "\n";
    text << "decode.inner_params: " << join(names, ",") << "\n";
  }
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const auto& t : w.tensors()) {
    auto cpu = t.detach().to(torch::kCPU).contiguous();
    h = hash_bytes(cpu.data_ptr(), cpu.numel() * cpu.element_size(), h);
  }
  return ModelFingerprint{text.str(), hex64(h)};
}

void save_decode_state(const std::string& path, const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                       const DecodeState& state) {
  const auto fingerprint = model_fingerprint(cfg, ttt, w);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  // Caches are named by block: the stored-weight blocks' first, then the suffix blocks' under
  // test-time training.
  std::vector<KvCache> window_caches = state.window_caches;
  window_caches.insert(window_caches.end(), state.fast.caches.begin(), state.fast.caches.end());
  for (size_t i = 0; i < window_caches.size(); ++i) {
    tensors.emplace_back(cache_name("cache", i, "k"), window_caches[i].k);
    tensors.emplace_back(cache_name("cache", i, "v"), window_caches[i].v);
  }
  for (size_t i = 0; i < state.full_caches.size(); ++i) {
    const auto& c = state.full_caches[i];
    tensors.emplace_back(cache_name("cache", i, "k"), c.k.slice(1, 0, c.length));
    tensors.emplace_back(cache_name("cache", i, "v"), c.v.slice(1, 0, c.length));
  }
  for (size_t k = 0; k < state.fast.weights.size(); ++k)
    tensors.emplace_back("fast_weights." + ttt.inner[k].name, state.fast.weights[k].detach());
  if (state.pending_hidden.defined()) {
    tensors.emplace_back("pending.hidden", state.pending_hidden);
    tensors.emplace_back("pending.ids", state.pending_ids);
    for (size_t j = 0; j < state.chunk_start_caches.size(); ++j) {
      tensors.emplace_back(cache_name("chunk_start_cache", j, "k"), state.chunk_start_caches[j].k);
      tensors.emplace_back(cache_name("chunk_start_cache", j, "v"), state.chunk_start_caches[j].v);
    }
  }
  tensors.emplace_back("seen", state.seen);
  if (state.last_logits.defined()) tensors.emplace_back("last_logits", state.last_logits);

  const std::map<std::string, std::string> metadata = {{"format", kFormat},
                                                       {"version", kVersion},
                                                       {"position", std::to_string(state.position)},
                                                       {"config", fingerprint.config},
                                                       {"weights_checksum", fingerprint.weights_checksum}};
  const std::string tmp = path + ".tmp-" + std::to_string(getpid());
  try {
    save_safetensors(tmp, tensors, metadata);
    std::filesystem::rename(tmp, path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

DecodeState load_decode_state(const std::string& path, const ModelConfig& cfg, const TttOptions& ttt,
                              const ModelWeights& w) {
  if (!std::filesystem::is_regular_file(path)) throw std::runtime_error("state file " + path + " does not exist");
  SafetensorsFile file = load_safetensors(path);
  const auto meta = [&](const std::string& key) {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? std::string() : it->second;
  };
  if (meta("format") != kFormat) throw std::runtime_error(path + " is not a ttt decoding state (no format: " + kFormat + ")");
  if (meta("version") != kVersion)
    throw std::runtime_error("state file " + path + " has version " + meta("version") + ", this build reads " + kVersion);
  const auto fingerprint = model_fingerprint(cfg, ttt, w);
  const std::string difference = first_difference(meta("config"), fingerprint.config);
  if (!difference.empty())
    throw std::runtime_error("state file " + path + " was written for a different model: " + difference);
  if (meta("weights_checksum") != fingerprint.weights_checksum)
    throw std::runtime_error("state file " + path + " was written for different weights (checksum " +
                             meta("weights_checksum") + " in the state, " + fingerprint.weights_checksum + " here)");

  const auto device = w.wte().device();
  auto get = [&](const std::string& name) { return take(file, name, path).to(device); };
  // A fresh state for what is derived (rope table), then everything the file holds.
  const auto seen = get("seen");
  DecodeState state = start_decoding(cfg, ttt, w, seen.size(0));  // the default segment: not part of the state
  state.seen = seen;
  state.position = std::stoll(meta("position"));
  state.window_caches.clear();
  state.full_caches.clear();
  const int64_t first_fast = ttt.enabled ? cfg.num_hidden_layers - cfg.suffix_len : cfg.num_hidden_layers;
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    auto k = get(cache_name("cache", i, "k")), v = get(cache_name("cache", i, "v"));
    if (cfg.seq_modeling_block == SeqModelingBlock::kSelfAttention)
      state.full_caches.push_back(GrowingKvCache{k, v, k.size(1)});
    else if (i < first_fast)
      state.window_caches.push_back(KvCache{k, v});
    else
      state.fast.caches[i - first_fast] = KvCache{k, v};
  }
  // Fast weights are leaves the inner step differentiates with respect to.
  for (size_t k = 0; k < ttt.inner.size(); ++k)
    state.fast.weights[k] = get("fast_weights." + ttt.inner[k].name).requires_grad_(true);
  state.fast.position = state.position;
  if (file.tensors.count("pending.hidden")) {
    state.pending_hidden = get("pending.hidden");
    state.pending_ids = get("pending.ids");
    for (int64_t j = 0; j < cfg.suffix_len; ++j)
      state.chunk_start_caches.push_back(
          KvCache{get(cache_name("chunk_start_cache", j, "k")), get(cache_name("chunk_start_cache", j, "v"))});
  }
  if (file.tensors.count("last_logits")) state.last_logits = get("last_logits");
  return state;
}

}  // namespace ttt

#include "infer/state_file.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>

#include "config/fields.h"
#include "model/layers.h"
#include "util/checksum.h"
#include "util/process_tag.h"
#include "util/safetensors.h"
#include "util/strings.h"

namespace ttt {
namespace {

constexpr const char* kFormat = "ttt-decode-state";
constexpr const char* kVersion = "1";

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

// Takes tensor `name` out of `file` after checking it against what this model's state holds:
// its dtype, its shape (`shape`, where -1 is any size), finite values for floating point.
class StateTensors {
 public:
  StateTensors(SafetensorsFile& file, std::string path) : file_(file), path_(std::move(path)) {}

  torch::Tensor take(const std::string& name, torch::ScalarType dtype, const std::vector<int64_t>& shape) {
    auto it = file_.tensors.find(name);
    if (it == file_.tensors.end()) fail("lacks tensor " + name);
    torch::Tensor t = it->second;
    file_.tensors.erase(it);
    if (t.scalar_type() != dtype)
      fail("tensor " + name + " is " + c10::toString(t.scalar_type()) + ", expected " + c10::toString(dtype));
    bool shape_ok = t.dim() == static_cast<int64_t>(shape.size());
    for (size_t i = 0; shape_ok && i < shape.size(); ++i) shape_ok = shape[i] < 0 || t.size(i) == shape[i];
    if (!shape_ok) fail("tensor " + name + " has shape " + c10::str(t.sizes()) + ", expected " + c10::str(shape));
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
      fail("tensor " + name + " holds non-finite values");
    return t;
  }
  bool has(const std::string& name) const { return file_.tensors.count(name) > 0; }
  // After every expected tensor was taken: none may be left.
  void expect_no_more() {
    if (!file_.tensors.empty()) fail("holds an unexpected tensor " + file_.tensors.begin()->first);
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("state file " + path_ + " " + what);
  }

 private:
  SafetensorsFile& file_;
  std::string path_;
};

// The position metadata: decimal digits, at most kMaxPosition.
int64_t parse_position(const std::string& text, const std::string& path) {
  constexpr int64_t kMaxPosition = int64_t{1} << 40;
  const bool digits = !text.empty() && text.size() <= 13 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoll(text) > kMaxPosition)
    throw std::runtime_error("state file " + path + ": position '" + text.substr(0, 40) +
                             "' is not a position in [0, " + std::to_string(kMaxPosition) + "]");
  return std::stoll(text);
}

// A TTT-layer block's state tensors, by name ("ttt_block.<i>.<part>"), with their shapes for
// sequences of `batch`; `with_acc`: inside a mini-batch (its accumulated gradients are held).
std::vector<std::pair<std::string, std::vector<int64_t>>> ttt_block_parts(const ModelConfig& cfg, int64_t batch,
                                                                          bool with_acc) {
  const int64_t H = cfg.num_attention_heads, D = cfg.hidden_size, d = D / H, K = cfg.conv_width;
  const int64_t width = is_ttt_mlp(cfg.seq_modeling_block) ? 4 * d : d;
  std::vector<std::pair<std::string, std::vector<int64_t>>> parts;
  if (cfg.pre_conv) parts.push_back({"pre_conv_history", {batch, K - 1, D}});
  if (is_ttt_mamba_backbone(cfg.seq_modeling_block)) {
    parts.push_back({"conv_q_history", {batch, K - 1, D}});
    parts.push_back({"conv_k_history", {batch, K - 1, D}});
  }
  std::vector<std::pair<std::string, std::vector<int64_t>>> weights{{"w1", {batch, H, d, width}},
                                                                    {"b1", {batch, H, 1, width}}};
  if (is_ttt_mlp(cfg.seq_modeling_block)) {
    weights.push_back({"w2", {batch, H, 4 * d, d}});
    weights.push_back({"b2", {batch, H, 1, d}});
  }
  for (const auto& part : weights) parts.push_back(part);
  if (with_acc)
    for (const auto& [name, shape] : weights) parts.push_back({"acc_" + name, shape});
  return parts;
}

// The tensor of a TTT-layer block state's part (ttt_block_parts).
torch::Tensor& ttt_block_part(TttBlockState& s, const std::string& part) {
  static const std::map<std::string, torch::Tensor TttLayerState::*> layer_parts = {
      {"conv_q_history", &TttLayerState::conv_q_history},
      {"conv_k_history", &TttLayerState::conv_k_history},
      {"w1", &TttLayerState::w1},
      {"b1", &TttLayerState::b1},
      {"w2", &TttLayerState::w2},
      {"b2", &TttLayerState::b2},
      {"acc_w1", &TttLayerState::acc_w1},
      {"acc_b1", &TttLayerState::acc_b1},
      {"acc_w2", &TttLayerState::acc_w2},
      {"acc_b2", &TttLayerState::acc_b2}};
  if (part == "pre_conv_history") return s.pre_conv_history;
  return s.layer.*layer_parts.at(part);
}

// The dtype a TTT-layer block's state part is held in while decoding: the pre-convolution's
// history in the compute dtype of the hidden states, the layer's state in its accumulation dtype.
torch::ScalarType ttt_block_part_dtype(const ModelConfig& cfg, const ModelWeights& w, const std::string& part) {
  const auto hidden = compute_dtype(w.wte(), cfg.compute_dtype);
  return part == "pre_conv_history" ? hidden : accumulation_dtype(w.wte().scalar_type());
}

}  // namespace

ModelFingerprint model_fingerprint(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w) {
  Config config;
  config.model = cfg;
  std::ostringstream text;
  // The TTT-layer fields change what decoding computes only for TTT-layer models, and the inner-lr
  // warm-up and the recomputation never do (so states of the other models read as before).
  const bool ttt_layers = is_ttt_layer(cfg.seq_modeling_block);
  for (const auto& line : used_field_lines(config, "model")) {
    const bool ttt_layer_field = starts_with(line, "model.ttt_base_lr") || starts_with(line, "model.pre_conv") ||
                                 starts_with(line, "model.conv_width");
    const bool never = starts_with(line, "model.ttt_base_lr_") || starts_with(line, "model.remat_");
    if (never || (ttt_layer_field && !ttt_layers)) continue;
    text << line << "\n";
  }
  text << "decode.test_time_training: " << (ttt.enabled ? "true" : "false") << "\n";
  if (ttt.enabled) {
    std::vector<std::string> names;
    for (const auto& p : ttt.inner) names.push_back(p.name);
    text << "decode.inner_lr: " << ttt.lr << "\n";
    text << "decode.inner_clip: " << ttt.clip << "\n";
    text << "decode.inner_params: " << join(names, ",") << "\n";
  }
  uint64_t h = kChecksumSeed;
  for (const auto& t : w.tensors()) {
    auto cpu = t.detach().to(torch::kCPU).contiguous();
    h = checksum_bytes(cpu.data_ptr(), cpu.numel() * cpu.element_size(), h);
  }
  return ModelFingerprint{text.str(), hex64(h)};
}

void save_decode_state(const std::string& path, const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                       const DecodeState& state) {
  const auto fingerprint = model_fingerprint(cfg, ttt, w);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  // Caches are named by block: the stored-weight blocks' first, then the suffix blocks' under
  // test-time training.
  std::vector<KvCache> window_caches;
  for (const auto& c : state.window_caches) window_caches.push_back(window_cache_view(c));
  window_caches.insert(window_caches.end(), state.fast.caches.begin(), state.fast.caches.end());
  for (size_t i = 0; i < window_caches.size(); ++i) {
    tensors.emplace_back(cache_name("cache", i, "k"), window_caches[i].k);
    tensors.emplace_back(cache_name("cache", i, "v"), window_caches[i].v);
  }
  for (size_t i = 0; i < state.full_caches.size(); ++i) {
    const auto& c = state.full_caches[i];
    tensors.emplace_back(cache_name("cache", i, "k"), c.k.slice(2, 0, c.length).transpose(1, 2));
    tensors.emplace_back(cache_name("cache", i, "v"), c.v.slice(2, 0, c.length).transpose(1, 2));
  }
  for (size_t k = 0; k < state.fast.weights.size(); ++k)
    tensors.emplace_back("fast_weights." + ttt.inner[k].name, state.fast.weights[k].detach());
  for (size_t i = 0; i < state.ttt_blocks.size(); ++i) {
    TttBlockState block = state.ttt_blocks[i];
    const int64_t batch = state.seen.size(0);
    for (const auto& [part, shape] : ttt_block_parts(cfg, batch, state.position % cfg.mini_batch_size != 0))
      tensors.emplace_back(cache_name("ttt_block", i, part.c_str()),
                           ttt_block_part(block, part).detach().to(ttt_block_part_dtype(cfg, w, part)).contiguous());
  }
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
  // Written beside and renamed; temporary files of writers that were killed go first.
  for (const auto& leftover : abandoned_siblings(path, ".tmp-")) std::filesystem::remove(leftover);
  const std::string tmp = path + ".tmp-" + process_tag();
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
  return decode_state_from(file, path, cfg, ttt, w);
}

DecodeState decode_state_from(SafetensorsFile& file, const std::string& path, const ModelConfig& cfg,
                              const TttOptions& ttt, const ModelWeights& w) {
  const auto meta = [&](const std::string& key) {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? std::string() : it->second;
  };
  if (meta("format") != kFormat)
    throw std::runtime_error(path + " is not a ttt decoding state (no format: " + kFormat + ")");
  if (meta("version") != kVersion)
    throw std::runtime_error("state file " + path + " has version " + meta("version").substr(0, 40) +
                             ", this build reads " + kVersion);
  const auto fingerprint = model_fingerprint(cfg, ttt, w);
  const std::string difference = first_difference(meta("config"), fingerprint.config);
  if (!difference.empty())
    throw std::runtime_error("state file " + path + " was written for a different model: " + difference);
  if (meta("weights_checksum") != fingerprint.weights_checksum)
    throw std::runtime_error("state file " + path + " was written for different weights (checksum " +
                             meta("weights_checksum").substr(0, 40) + " in the state, " + fingerprint.weights_checksum +
                             " here)");
  const int64_t position = parse_position(meta("position"), path);

  // Every tensor is checked against what this model's state holds (dtype, shape, finite values)
  // before anything is allocated for the state: the file's sizes alone bound what loading costs.
  StateTensors tensors(file, path);
  const int64_t vocab = w.output_width();
  if (!tensors.has("seen")) tensors.fail("lacks tensor seen");
  const int64_t B = file.tensors.at("seen").dim() == 2 ? file.tensors.at("seen").size(0) : -1;
  if (B < 1 || B > (1 << 16)) tensors.fail("has a tensor seen that is not [batch, " + std::to_string(vocab) + "]");
  const auto seen = tensors.take("seen", torch::kBool, {B, vocab});
  const int64_t H = cfg.num_attention_heads, d = cfg.hidden_size / H, W = cfg.sliding_window_size;
  const auto cache_dtype = compute_dtype(w.wte(), cfg.compute_dtype);
  auto cache = [&](const std::string& prefix, size_t i, int64_t length) {
    return KvCache{tensors.take(cache_name(prefix.c_str(), i, "k"), cache_dtype, {B, length, H, d}),
                   tensors.take(cache_name(prefix.c_str(), i, "v"), cache_dtype, {B, length, H, d})};
  };
  const bool full_attention = cfg.seq_modeling_block == SeqModelingBlock::kSelfAttention;
  const bool ttt_layers = is_ttt_layer(cfg.seq_modeling_block);
  std::vector<KvCache> caches;                                                        // per block
  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> ttt_block_tensors;  // per block
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    if (!ttt_layers) {
      caches.push_back(cache("cache", i, full_attention ? position : W));
      continue;
    }
    ttt_block_tensors.emplace_back();
    for (const auto& [part, shape] : ttt_block_parts(cfg, B, position % cfg.mini_batch_size != 0))
      ttt_block_tensors.back().emplace_back(
          part, tensors.take(cache_name("ttt_block", i, part.c_str()), ttt_block_part_dtype(cfg, w, part), shape));
  }
  std::vector<torch::Tensor> fast_weights;
  for (const auto& param : ttt.inner) {
    const auto& p = w.get(param.name);
    std::vector<int64_t> shape{B};
    for (auto s : p.sizes()) shape.push_back(s);
    fast_weights.push_back(tensors.take("fast_weights." + param.name,
                                        p.scalar_type() == torch::kFloat64 ? torch::kFloat64 : ttt.state_dtype, shape));
  }
  // The chunk being read: every token since the last chunk boundary whose step has not run yet.
  const int64_t b = cfg.mini_batch_size, pending = position % b;
  torch::Tensor pending_hidden, pending_ids;
  std::vector<KvCache> chunk_start_caches;
  if (ttt.enabled && (pending > 0 || (tensors.has("pending.hidden") && position > 0))) {
    const int64_t n = pending > 0 ? pending : b;
    pending_hidden = tensors.take("pending.hidden", cache_dtype, {B, n, cfg.hidden_size});
    pending_ids = tensors.take("pending.ids", torch::kInt64, {B, n});
    if (pending_ids.min().item<int64_t>() < 0 || pending_ids.max().item<int64_t>() >= cfg.vocab_size)
      tensors.fail("holds pending token ids outside the vocabulary");
    for (int64_t j = 0; j < cfg.suffix_len; ++j) chunk_start_caches.push_back(cache("chunk_start_cache", j, W));
  }
  torch::Tensor last_logits;
  if (position > 0) last_logits = tensors.take("last_logits", torch::kFloat32, {B, vocab});
  tensors.expect_no_more();

  // A fresh state for what is derived (the segment, the rope table), then what the file holds.
  DecodeState state = start_decoding(cfg, ttt, w, B);
  const auto device = w.wte().device();
  auto on_device = [&](const KvCache& c) { return KvCache{c.k.to(device), c.v.to(device)}; };
  state.position = position;
  state.fast.position = position;
  state.seen = seen.to(device);
  const int64_t first_fast = first_fast_block(cfg, ttt);
  for (size_t i = 0; i < ttt_block_tensors.size(); ++i) {
    for (const auto& [part, t] : ttt_block_tensors[i]) ttt_block_part(state.ttt_blocks[i], part) = t.to(device);
    state.ttt_blocks[i].layer.position = position;
  }
  for (size_t i = 0; i < caches.size(); ++i) {
    const KvCache c = on_device(caches[i]);
    if (full_attention)
      state.full_caches[i] =
          GrowingKvCache{c.k.transpose(1, 2).contiguous(), c.v.transpose(1, 2).contiguous(), position};
    else if (static_cast<int64_t>(i) < first_fast)
      state.window_caches[i] = window_cache_at(c, position, state.segment, state.rope);
    else
      state.fast.caches[static_cast<int64_t>(i) - first_fast] = c;
  }
  // Fast weights are leaves the inner step differentiates with respect to.
  for (size_t k = 0; k < fast_weights.size(); ++k)
    state.fast.weights[k] = fast_weights[k].to(device).requires_grad_(true);
  if (pending_hidden.defined()) {
    state.pending_hidden = pending_hidden.to(device);
    state.pending_ids = pending_ids.to(device);
    for (const auto& c : chunk_start_caches) state.chunk_start_caches.push_back(on_device(c));
  }
  if (last_logits.defined()) state.last_logits = last_logits.to(device);
  return state;
}

}  // namespace ttt

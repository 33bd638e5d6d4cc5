// Checks of a typed configuration: first what the field registry declares for every field (its
// bounds, and "only the default is supported here"), then a flat list of consistency checks
// across fields. Each throws one line that names the key(s).
#include "config/validate.h"

#include <cmath>
#include <sstream>
#include <string>

#include "config/schema.h"
#include "util/strings.h"

namespace ttt {
namespace {

void check(bool ok, const std::string& message) {
  if (!ok) throw ConfigError(message);
}

std::string format_number(long double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

// The value of a numeric field as a long double (exact for every int64), or nullopt when the
// field is not numeric or an unset optional.
std::optional<long double> numeric_value(const FieldRef& ref) {
  if (auto* v = std::get_if<int64_t*>(&ref)) return static_cast<long double>(**v);
  if (auto* v = std::get_if<double*>(&ref)) return static_cast<long double>(**v);
  if (auto* v = std::get_if<std::optional<int64_t>*>(&ref))
    if ((*v)->has_value()) return static_cast<long double>(***v);
  return std::nullopt;
}

void check_bounds(const FieldSpec& spec, const FieldRef& ref) {
  const auto value = numeric_value(ref);
  if (!spec.bounds.set || !value) return;
  const FieldBounds& b = spec.bounds;
  // Written so that NaN fails every comparison.
  const bool above_min = b.min_exclusive ? *value > b.min : *value >= b.min;
  const bool below_max = b.max_exclusive ? *value < b.max : *value <= b.max;
  if (above_min && below_max && std::isfinite(*value)) return;
  const bool is_int = !std::holds_alternative<double*>(ref);
  std::string range;
  if (is_int && b.min == 1)
    range = "positive and at most " + format_number(b.max);
  else if (b.min_exclusive && b.min == 0)
    range = "positive, finite and at most " + format_number(b.max);
  else
    range = std::string(b.min_exclusive ? "in (" : "in [") + format_number(b.min) + ", " + format_number(b.max) +
            (b.max_exclusive ? ")" : "]");
  throw ConfigError(std::string(spec.key) + " must be " + range + ", got " + format_number(*value));
}

// The registry's declarations: bounds of numeric fields, and fields whose default is the only
// value supported here.
void check_declared(const Config& config) {
  Config copy = config;  // the registry hands out mutable references
  const RawConfig values = raw_from_config(config), defaults = raw_from_config(Config{});
  for (const FieldSpec& spec : config_fields()) {
    check_bounds(spec, spec.ref(copy));
    if (spec.use != FieldUse::kDefaultOnly) continue;
    const RawValue& value = values.at(spec.key);
    const RawValue& fallback = defaults.at(spec.key);
    if (value.kind != fallback.kind || value.text != fallback.text)
      throw ConfigError(std::string(spec.key) + " = " + value.text + ": " + spec.note);
  }
}

bool is_device(const std::string& device) {
  if (device == "cpu" || device == "cuda") return true;
  if (!starts_with(device, "cuda:") || device.size() == 5 || device.size() > 8) return false;  // cuda:0 .. cuda:999
  for (std::size_t i = 5; i < device.size(); ++i) {
    if (device[i] < '0' || device[i] > '9') return false;
  }
  return true;
}

}  // namespace

void validate_config(const Config& config) {
  const ModelConfig& model = config.model;
  const TrainingConfig& training = config.training;
  check_declared(config);

  const bool meta = training.train_mode == TrainMode::kMeta;
  check(is_device(config.backend.device),
        "backend.device: unknown device '" + config.backend.device + "' (allowed: cpu, cuda, cuda:N)");
  check(training.seq_length % model.mini_batch_size == 0,
        "training.seq_length (" + std::to_string(training.seq_length) +
            ") must be a multiple of model.mini_batch_size (" + std::to_string(model.mini_batch_size) + ")");
  check(model.suffix_len <= model.num_hidden_layers, "model.suffix_len (" + std::to_string(model.suffix_len) +
                                                         ") must be between 0 and model.num_hidden_layers (" +
                                                         std::to_string(model.num_hidden_layers) + ")");
  check(model.hidden_size % model.num_attention_heads == 0, "model.hidden_size (" + std::to_string(model.hidden_size) +
                                                                ") must be divisible by model.num_attention_heads (" +
                                                                std::to_string(model.num_attention_heads) + ")");
  check((model.hidden_size / model.num_attention_heads) % 2 == 0,
        "model.hidden_size / model.num_attention_heads (head dim " +
            std::to_string(model.hidden_size / model.num_attention_heads) + ") must be even: RoPE rotates pairs");
  check(!(model.prime && model.suffix_len == 0),
        "model.prime is true but model.suffix_len is 0: prime MLPs live in the suffix blocks");
  check(!(meta && model.seq_modeling_block != SeqModelingBlock::kSlidingWindow),
        "training.train_mode is meta but model.seq_modeling_block is " + to_string(model.seq_modeling_block) +
            ": the inner loop reads the sequence in chunks through a sliding-window KV cache (use SWA)");
  const bool ttt_layer = is_ttt_layer(model.seq_modeling_block);
  const std::string block_name = to_string(model.seq_modeling_block);
  check(!(ttt_layer && model.qk_norm),
        "model.qk_norm is true but model.seq_modeling_block is " + block_name +
            ": a TTT layer has no attention scores to normalise (set model.qk_norm=false)");
  check(!(ttt_layer && model.prime), "model.prime is true but model.seq_modeling_block is " + block_name +
                                         ": prime MLPs belong to TTT-E2E's suffix blocks");
  check((model.ttt_base_lr_init > 0) == (model.ttt_base_lr_warmup > 0),
        "model.ttt_base_lr_init (" + std::to_string(model.ttt_base_lr_init) + ") and model.ttt_base_lr_warmup (" +
            std::to_string(model.ttt_base_lr_warmup) +
            ") must both be positive (an inner-lr warm-up) or both not (none); one alone would be ignored");
  check(!(model.pre_conv && !ttt_layer), "model.pre_conv is true but model.seq_modeling_block is " + block_name +
                                             ": the pre-convolution belongs to TTT-layer blocks");
  check(!(meta && model.suffix_len == 0),
        "training.train_mode is meta but model.suffix_len is 0: test-time training needs suffix blocks");
  check(training.global_batch_size % training.accum_steps == 0,
        "training.global_batch_size (" + std::to_string(training.global_batch_size) +
            ") must be divisible by training.accum_steps (" + std::to_string(training.accum_steps) + ")");
  check(training.copy_spans == 0 || 2 * training.copy_span_length <= training.seq_length + 1,
        "training.copy_span_length (" + std::to_string(training.copy_span_length) +
            ") is more than half of a training sample (training.seq_length + 1 = " +
            std::to_string(training.seq_length + 1) + " tokens): a span and its copy must both fit");
  check(model.tie_word_embeddings || model.output_size <= model.vocab_size,
        "model.output_size (" + std::to_string(model.output_size) + ") exceeds model.vocab_size (" +
            std::to_string(model.vocab_size) + "): a generated token must be one the model can read back");
  check(model.bos_token_id >= 0 && model.bos_token_id < model.vocab_size,
        "model.bos_token_id (" + std::to_string(model.bos_token_id) + ") is outside the vocabulary (model.vocab_size " +
            std::to_string(model.vocab_size) + ")");
  check(model.eos_token_id >= 0 && model.eos_token_id < model.vocab_size,
        "model.eos_token_id (" + std::to_string(model.eos_token_id) + ") is outside the vocabulary (model.vocab_size " +
            std::to_string(model.vocab_size) + ")");
  const OptimizerConfig& outer = training.optimizer_outer;
  check(!(outer.optimizer_type == OptimizerType::kAdamW && outer.lr != 0 &&
          outer.lr_decay_steps <= outer.lr_warmup_steps),
        "training.optimizer_outer.lr_decay_steps (" + std::to_string(outer.lr_decay_steps) +
            ") must be greater than training.optimizer_outer.lr_warmup_steps (" +
            std::to_string(outer.lr_warmup_steps) +
            "): the cosine decay runs between them (the reference's optax schedule rejects this too)");
  check(!(meta && training.optimizer_inner.optimizer_type != OptimizerType::kSGD),
        "training.optimizer_inner.optimizer_type is " + to_string(training.optimizer_inner.optimizer_type) +
            ": the inner loop takes plain SGD steps (as every official config does); use sgd");
}

}  // namespace ttt

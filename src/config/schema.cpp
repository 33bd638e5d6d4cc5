// The field registry and the typed conversion between RawConfig and Config.
#include "config/schema.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "util/strings.h"

namespace ttt {
namespace {

FieldSpec make_field(const char* key, FieldRef (*ref)(Config&), UnsetStyle unset) {
  return FieldSpec{key, ref, unset, FieldUse::kUsed, "", FieldBounds{}};
}

// One registry entry: the key is spelled once, as the member path it reads.
#define TTT_FIELD(section, name, unset) \
  make_field(                           \
      #section "." #name, [](Config& c) { return field_ref(&c.section.name); }, UnsetStyle::unset)

FieldSpec parity(FieldSpec spec, const char* what_it_does_in_the_reference) {
  spec.use = FieldUse::kParity;
  spec.note = what_it_does_in_the_reference;
  return spec;
}

FieldSpec default_only(FieldSpec spec, const char* why) {
  spec.use = FieldUse::kDefaultOnly;
  spec.note = why;
  return spec;
}

// [min, max].
FieldSpec in_range(FieldSpec spec, long double min, long double max) {
  spec.bounds = FieldBounds{min, max, false, false, true};
  return spec;
}

// (0, max]: a float that must be positive.
FieldSpec positive_up_to(FieldSpec spec, long double max) {
  spec.bounds = FieldBounds{0, max, true, false, true};
  return spec;
}

// [min, max): AdamW's betas (a beta of 1 divides by zero in the bias correction).
FieldSpec below(FieldSpec spec, long double min, long double max) {
  spec.bounds = FieldBounds{min, max, false, true, true};
  return spec;
}

// Bounds keep every size far beyond the official 3B / 128K configurations and far below what
// would overflow a count or ask for an absurd allocation before anything else is checked.
constexpr long double kMaxVocab = 1 << 24;  // Llama-3: 128256
constexpr long double kMaxWidth = 1 << 18;  // hidden and MLP widths (3B: 3072 / 8192)
constexpr long double kMaxLayers = 1 << 12;
constexpr long double kMaxTokens = 1 << 24;  // sequence, window and chunk lengths (official: 128K)
constexpr long double kMaxBatch = 1 << 20;   // sequences per batch, accumulation steps
constexpr long double kMaxSteps = 1LL << 40;
constexpr long double kMaxSeed = 1LL << 62;
constexpr long double kMaxLearningRate = 1e6;
constexpr long double kMaxNodes = 1 << 16;
constexpr long double kMaxTasksPerNode = 1 << 12;  // processes, GPUs or CPUs of one node

const char* const kOptimizerParityNote = "AdamW-only setting: the inner SGD optimiser has no use for it";

// The AdamW fields of an optimizer section; `inner` marks those the SGD inner optimiser ignores.
std::vector<FieldSpec> optimizer_fields(std::vector<FieldSpec> fields, bool inner) {
  for (FieldSpec& f : fields) {
    const std::string key = f.key;
    const std::string leaf = key.substr(key.rfind('.') + 1);
    if (leaf == "lr" || leaf == "init_lr" || leaf == "end_lr" || leaf == "weight_decay")
      f = in_range(f, 0, kMaxLearningRate);
    else if (leaf == "lr_warmup_steps" || leaf == "lr_decay_steps")
      f = in_range(f, 0, kMaxSteps);
    else if (leaf == "b1" || leaf == "b2")
      f = below(f, 0, 1);
    else if (leaf == "clip_gradient")
      f = in_range(f, 0, 1e12L);
    const bool sgd_uses = leaf == "optimizer_type" || leaf == "lr" || leaf == "clip_gradient";
    if (inner && !sgd_uses) f = parity(f, kOptimizerParityNote);
    if (!inner && leaf == "bf16_momentum") f = default_only(f, "bf16 optimizer moments are not supported; use false");
  }
  return fields;
}

#define TTT_OPTIMIZER_FIELDS(section)                                                                              \
  {                                                                                                                \
    TTT_FIELD(section, optimizer_type, Null), TTT_FIELD(section, init_lr, Null), TTT_FIELD(section, end_lr, Null), \
        TTT_FIELD(section, lr, Null), TTT_FIELD(section, lr_warmup_steps, Null),                                   \
        TTT_FIELD(section, lr_decay_steps, Null), TTT_FIELD(section, b1, Null), TTT_FIELD(section, b2, Null),      \
        TTT_FIELD(section, clip_gradient, Null), TTT_FIELD(section, weight_decay, Null),                           \
        TTT_FIELD(section, bf16_momentum, Null), TTT_FIELD(section, emb_wd, Null)                                  \
  }

std::vector<FieldSpec> build_registry() {
  const char* const kWandb = "Weights & Biases settings (logging here goes to metrics.jsonl)";
  const char* const kRemat =
      "a JAX rematerialisation policy inside a block; recomputation here is chunk-level "
      "(training.inner_remat_freq)";
  const char* const kDropout = "dropout is not supported (every official config uses 0)";
  const char* const kMultiHost = "the devices a JAX process drives; here each process drives one (cuda:LOCAL_RANK)";
  std::vector<FieldSpec> fields = {
      default_only(TTT_FIELD(training, log_wandb, Null),
                   "Weights & Biases is not available in this implementation; set it to false "
                   "(metrics go to metrics.jsonl in the run directory)"),
      parity(TTT_FIELD(training, wandb_entity, Missing), kWandb),
      parity(TTT_FIELD(training, wandb_project, Missing), kWandb),
      parity(TTT_FIELD(training, wandb_key, Missing), kWandb),
      in_range(TTT_FIELD(training, model_seed, Null), 0, kMaxSeed),
      in_range(TTT_FIELD(training, data_seed, Null), 0, kMaxSeed),
      TTT_FIELD(training, load_part, Null),
      in_range(TTT_FIELD(training, total_steps, Null), 1, kMaxSteps),
      in_range(TTT_FIELD(training, break_step, Null), -1, kMaxSteps),
      in_range(TTT_FIELD(training, save_milestone_freq, Null), 0, kMaxSteps),
      TTT_FIELD(training, dataset_path, Missing),
      TTT_FIELD(training, dataset_name, Missing),
      TTT_FIELD(training, tokenizer_name, Null),
      in_range(TTT_FIELD(training, seq_length, Null), 1, kMaxTokens),
      in_range(TTT_FIELD(training, global_batch_size, Null), 1, kMaxBatch),
      in_range(TTT_FIELD(training, accum_steps, Null), 1, kMaxBatch),
      parity(in_range(TTT_FIELD(training, loader_workers, Null), 0, 1 << 12),
             "grain reader threads; here one background thread reads batches ahead"),
      TTT_FIELD(training, dummy_dataset, Null),
      TTT_FIELD(training, checkpoint_path, Null),
      TTT_FIELD(training, exp_dir, Null),
      TTT_FIELD(training, exp_folder, Null),
      TTT_FIELD(training, exp_name, Missing),
      TTT_FIELD(training, resume_exp_name, Null),
      in_range(TTT_FIELD(training, resume_step, Null), 0, kMaxSteps),
      TTT_FIELD(training, eval_mode, Null),
      TTT_FIELD(training, train_mode, Null),
      TTT_FIELD(training, data_split, Null),
      TTT_FIELD(training, eval_split, Null),
      in_range(TTT_FIELD(training, inner_remat_freq, Null), 0, kMaxTokens),
  };
  for (auto& f : optimizer_fields(TTT_OPTIMIZER_FIELDS(training.optimizer_outer), false)) fields.push_back(f);
  for (auto& f : optimizer_fields(TTT_OPTIMIZER_FIELDS(training.optimizer_inner), true)) fields.push_back(f);
  const std::vector<FieldSpec> rest = {
      TTT_FIELD(training, spec_outer, Null),
      TTT_FIELD(training, spec_inner, Null),
      parity(in_range(TTT_FIELD(training, n_data_parallel, Null), 1, kMaxBatch),
             "the data-parallel mesh size (derived from the device count when null)"),
      default_only(TTT_FIELD(training, n_state_parallel, Null),
                   "sequence/state sharding is not supported (one process holds the whole sequence)"),
      in_range(TTT_FIELD(training, ilr_warmup_steps, Null), 0, kMaxSteps),
      in_range(TTT_FIELD(training, ilr_init, Null), 0, kMaxLearningRate),
      in_range(TTT_FIELD(training, eval_batch_size, Null), 1, kMaxBatch),
      in_range(TTT_FIELD(training, copy_spans, Null), 0, kMaxTokens),
      in_range(TTT_FIELD(training, copy_span_length, Null), 1, kMaxTokens),
      TTT_FIELD(training, copy_span_random, Null),

      parity(TTT_FIELD(model, name, Null), "a label for the model size"),
      in_range(TTT_FIELD(model, vocab_size, Null), 1, kMaxVocab),
      in_range(TTT_FIELD(model, hidden_size, Null), 1, kMaxWidth),
      in_range(TTT_FIELD(model, intermediate_size, Null), 1, kMaxWidth),
      in_range(TTT_FIELD(model, num_hidden_layers, Null), 1, kMaxLayers),
      in_range(TTT_FIELD(model, num_attention_heads, Null), 1, kMaxWidth),
      in_range(TTT_FIELD(model, mini_batch_size, Null), 1, kMaxTokens),
      in_range(TTT_FIELD(model, sliding_window_size, Null), 1, kMaxTokens),
      parity(in_range(TTT_FIELD(model, seq_len, Null), 0, 1LL << 40),
             "the length of the precomputed RoPE table (set to training.seq_length); rotations here are computed "
             "for the positions in use"),
      positive_up_to(TTT_FIELD(model, rms_norm_eps, Null), 1),
      in_range(TTT_FIELD(model, initializer_range, Null), 0, 1e3L),
      TTT_FIELD(model, bos_token_id, Null),
      TTT_FIELD(model, eos_token_id, Null),
      default_only(TTT_FIELD(model, resid_pdrop, Null), kDropout),
      default_only(TTT_FIELD(model, embd_pdrop, Null), kDropout),
      default_only(TTT_FIELD(model, attn_pdrop, Null), kDropout),
      TTT_FIELD(model, tie_word_embeddings, Null),
      TTT_FIELD(model, remat_block, Null),
      parity(TTT_FIELD(model, remat_block_bwd, Null), kRemat),
      TTT_FIELD(model, remat_prefix_block, Null),
      parity(TTT_FIELD(model, remat_attention, Null), kRemat),
      parity(TTT_FIELD(model, remat_attention_bwd, Null), kRemat),
      parity(TTT_FIELD(model, remat_mlp, Null), kRemat),
      parity(TTT_FIELD(model, remat_mlp_bwd, Null), kRemat),
      parity(TTT_FIELD(model, remat_rms, Null), kRemat),
      parity(TTT_FIELD(model, remat_rms_bwd, Null), kRemat),
      parity(TTT_FIELD(model, remat_multiple_gd, Null), kRemat),
      TTT_FIELD(model, seq_modeling_block, Null),
      positive_up_to(TTT_FIELD(model, rope_theta, Null), 1e12L),
      TTT_FIELD(model, rope_precision, Null),
      in_range(TTT_FIELD(model, output_size, Null), 1, kMaxVocab),
      TTT_FIELD(model, compute_dtype, Null),
      TTT_FIELD(model, param_dtype, Null),
      TTT_FIELD(model, state_dtype, Null),
      parity(TTT_FIELD(model, unroll_block_scan, Null), "XLA unrolling of the scan over blocks"),
      parity(TTT_FIELD(model, unroll_inner_scan, Null), "XLA unrolling of the scan over chunks"),
      parity(TTT_FIELD(model, force_flash, Null),
             "selects the cuDNN kernel of jax.nn.dot_product_attention and sequence-sharding constraints"),
      in_range(TTT_FIELD(model, suffix_len, Null), 0, kMaxLayers),
      TTT_FIELD(model, prime, Null),
      TTT_FIELD(model, qk_norm, Null),
      TTT_FIELD(model, pre_norm, Null),
      TTT_FIELD(model, post_norm, Null),
      TTT_FIELD(model, feed_forward_prime, Null),
      positive_up_to(TTT_FIELD(model, ttt_base_lr, Null), kMaxLearningRate),
      in_range(TTT_FIELD(model, ttt_base_lr_init, Null), -1, kMaxLearningRate),
      in_range(TTT_FIELD(model, ttt_base_lr_warmup, Null), -1, kMaxSteps),
      TTT_FIELD(model, pre_conv, Null),
      in_range(TTT_FIELD(model, conv_width, Null), 1, 1 << 10),
      in_range(TTT_FIELD(model, remat_mini_batch_group_size, Null), 0, kMaxTokens),

      TTT_FIELD(backend, distributed, Null),
      TTT_FIELD(backend, coordinator_address, Null),
      in_range(TTT_FIELD(backend, num_processes, Null), 1, kMaxBatch),
      in_range(TTT_FIELD(backend, process_id, Null), 0, kMaxBatch),
      parity(TTT_FIELD(backend, local_device_ids, Null), kMultiHost),
      parity(TTT_FIELD(backend, backend, Null),
             "the JAX platform name (cpu or gpu); backend.device selects the device here"),
      parity(TTT_FIELD(backend, num_devices, Null), kMultiHost),
      parity(TTT_FIELD(backend, compilation_cache_dir, Null), "the XLA compilation cache"),
      TTT_FIELD(backend, device, Null),
      in_range(TTT_FIELD(backend, num_threads, Null), 0, 1 << 12),
      in_range(TTT_FIELD(backend, dist_timeout_s, Null), 1, 7 * 24 * 3600),
      in_range(TTT_FIELD(backend, bucket_size_mb, Null), 1, 1 << 16),
      TTT_FIELD(backend, overlap_grad_reduce, Null),
      TTT_FIELD(backend, deterministic, Null),

      TTT_FIELD(checkpoint, float_dtype, Null),
      TTT_FIELD(checkpoint, save_optimizer_state, Null),
      TTT_FIELD(checkpoint, checkpoint_dir, Missing),
      TTT_FIELD(checkpoint, resume_checkpoint_dir, Missing),
      in_range(TTT_FIELD(checkpoint, save_freq, Null), 0, kMaxSteps),
      in_range(TTT_FIELD(checkpoint, keep_last, Null), 1, 1 << 20),

      TTT_FIELD(deploy_paths, data, Missing),
      TTT_FIELD(deploy_paths, checkpoint, Missing),

      TTT_FIELD(hydra, mode, Null),
      TTT_FIELD(hydra.launcher, name, Null),
      TTT_FIELD(hydra.launcher, partition, Null),
      in_range(TTT_FIELD(hydra.launcher, nodes, Missing), 1, kMaxNodes),
      in_range(TTT_FIELD(hydra.launcher, tasks_per_node, Null), 1, kMaxTasksPerNode),
      in_range(TTT_FIELD(hydra.launcher, gpus_per_node, Null), 1, kMaxTasksPerNode),
      in_range(TTT_FIELD(hydra.launcher, cpus_per_task, Null), 1, kMaxTasksPerNode),
      in_range(TTT_FIELD(hydra.launcher, mem_gb, Null), 1, 1 << 24),
      in_range(TTT_FIELD(hydra.launcher, timeout_min, Null), 1, 1 << 24),
      in_range(TTT_FIELD(hydra.launcher, signal_delay_s, Null), 0, 1 << 16),
      in_range(TTT_FIELD(hydra.launcher, max_num_timeout, Null), 0, 1 << 16),
      TTT_FIELD(hydra.launcher, stderr_to_stdout, Null),
      TTT_FIELD(hydra.launcher, qos, Null),
      TTT_FIELD(hydra.launcher, account, Null),
      TTT_FIELD(hydra.launcher, comment, Null),
      TTT_FIELD(hydra.launcher, constraint, Null),
      TTT_FIELD(hydra.launcher, exclude, Null),
      TTT_FIELD(hydra.launcher, gres, Null),
      in_range(TTT_FIELD(hydra.launcher, cpus_per_gpu, Null), 1, kMaxTasksPerNode),
      in_range(TTT_FIELD(hydra.launcher, gpus_per_task, Null), 1, kMaxTasksPerNode),
      TTT_FIELD(hydra.launcher, mem_per_gpu, Null),
      TTT_FIELD(hydra.launcher, mem_per_cpu, Null),
      TTT_FIELD(hydra.launcher, setup, Null),
      TTT_FIELD(hydra.launcher, srun_args, Null),
      parity(TTT_FIELD(hydra.launcher, slurm_python, Null),
             "the Python that submitit runs on the nodes; here the job runs the ttt binary that wrote it"),
      parity(in_range(TTT_FIELD(hydra.launcher, array_parallelism, Null), 1, 1 << 20),
             "the parallelism of a submitit job array (a sweep); here one job is submitted"),
  };
  fields.insert(fields.end(), rest.begin(), rest.end());
  return fields;
}

#undef TTT_OPTIMIZER_FIELDS
#undef TTT_FIELD

bool is_data_paths_map(const FieldSpec& spec) { return spec.key == kDataPathsSection; }

// The dotted keys of every value field (not the data-paths map), for suggestions.
std::vector<std::string> value_keys() {
  std::vector<std::string> keys;
  for (const FieldSpec& spec : config_fields()) {
    if (!is_data_paths_map(spec)) keys.emplace_back(spec.key);
  }
  return keys;
}

std::string last_component(const std::string& key) { return key.substr(key.rfind('.') + 1); }

// ---- typed conversion of one raw value ----

[[noreturn]] void throw_type_error(const std::string& key, const char* expected, const RawValue& value) {
  throw ConfigError(key + ": expected " + expected + ", got " + value.describe());
}

void require_present(const std::string& key, const RawValue& value) {
  if (value.kind == RawValue::Kind::Missing) {
    throw ConfigError(key + ": value is missing (" + std::string(kMissingMarker) +
                      "); set it in a config file or on the command line");
  }
}

bool is_unset(const RawValue& value) {
  return value.kind == RawValue::Kind::Null || value.kind == RawValue::Kind::Missing;
}

int64_t parse_int(const std::string& key, const RawValue& value) {
  require_present(key, value);
  if (value.kind != RawValue::Kind::Scalar) throw_type_error(key, "an integer", value);
  const std::string text = trim(value.text);
  std::size_t start = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  const bool digits_only =
      text.size() > start && std::all_of(text.begin() + start, text.end(), [](char c) { return c >= '0' && c <= '9'; });
  errno = 0;
  const long long parsed = digits_only ? std::strtoll(text.c_str(), nullptr, 10) : 0;
  if (!digits_only || errno == ERANGE) throw_type_error(key, "an integer", value);
  return static_cast<int64_t>(parsed);
}

double parse_float(const std::string& key, const RawValue& value) {
  require_present(key, value);
  if (value.kind != RawValue::Kind::Scalar) throw_type_error(key, "a number", value);
  const std::string text = to_lower(trim(value.text));
  // YAML spells infinities and NaN with a leading dot.
  if (text == ".inf" || text == "+.inf") return HUGE_VAL;
  if (text == "-.inf") return -HUGE_VAL;
  if (text == ".nan") return std::nan("");
  char* end = nullptr;
  const double parsed = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) throw_type_error(key, "a number", value);
  return parsed;
}

bool parse_bool(const std::string& key, const RawValue& value) {
  require_present(key, value);
  if (value.kind == RawValue::Kind::Scalar) {
    const std::string text = to_lower(trim(value.text));
    if (text == "true" || text == "yes" || text == "on") return true;
    if (text == "false" || text == "no" || text == "off") return false;
  }
  throw_type_error(key, "true or false", value);
}

std::string parse_string(const std::string& key, const RawValue& value) {
  require_present(key, value);
  if (value.kind != RawValue::Kind::Scalar) throw_type_error(key, "a string", value);
  return value.text;
}

std::vector<std::string> parse_string_list(const std::string& key, const RawValue& value) {
  require_present(key, value);
  if (value.kind != RawValue::Kind::List) throw_type_error(key, "a list like [a, b]", value);
  std::vector<std::string> items;
  for (const RawValue& item : value.items) {
    if (item.kind != RawValue::Kind::Scalar) throw_type_error(key, "a list of strings", item);
    items.push_back(item.text);
  }
  return items;
}

// The canonical spellings of an enum field's values (the first spelling of each value).
std::vector<std::string> canonical_spellings(const EnumRef& ref) {
  std::vector<std::string> names;
  std::vector<int> seen;
  for (const auto& [value, name] : ref.spellings()) {
    if (std::find(seen.begin(), seen.end(), value) != seen.end()) continue;
    seen.push_back(value);
    names.push_back(name);
  }
  return names;
}

std::string enum_name(const EnumRef& ref) {
  const int value = ref.get(ref.target);
  for (const auto& [v, name] : ref.spellings())
    if (v == value) return name;
  throw std::logic_error("enum value without a spelling");
}

// Sets an enum field from its spelling; an unknown one is an error listing the canonical ones.
void parse_enum(const std::string& key, const RawValue& value, const EnumRef& ref) {
  const std::string text = parse_string(key, value);
  for (const auto& [v, name] : ref.spellings()) {
    if (name == text) return ref.set(ref.target, v);
  }
  throw ConfigError(key + ": unknown value '" + text + "' (allowed: " + join(canonical_spellings(ref), ", ") + ")");
}

// Text that reads back as the same double, always with a '.' or an exponent so that other YAML
// readers see a float: whole numbers in fixed notation (500000.0), others in the shortest %g form.
std::string format_double(double value) {
  if (std::isnan(value)) return ".nan";
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  char buffer[40];
  if (std::floor(value) == value && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof(buffer), "%.1f", value);
    return buffer;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  std::string text = buffer;
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

RawValue unset_value(const FieldSpec& spec) {
  return spec.unset == UnsetStyle::Missing ? RawValue::missing() : RawValue::null();
}

}  // namespace

const std::vector<FieldSpec>& config_fields() {
  static const std::vector<FieldSpec> registry = build_registry();  // immutable after first use
  return registry;
}

const FieldSpec* find_field(std::string_view key) {
  for (const FieldSpec& spec : config_fields()) {
    if (key == spec.key) return &spec;
  }
  return nullptr;
}

bool is_section(std::string_view key) {
  if (key.empty() || key == kDataPathsSection) return true;
  for (const FieldSpec& spec : config_fields()) {
    const std::string_view field = spec.key;
    if (field.size() > key.size() && starts_with(field, key) && field[key.size()] == '.') return true;
  }
  return false;
}

bool is_hydra_internal(std::string_view key) {
  return starts_with(key, "hydra.") && find_field(key) == nullptr && !is_section(key);
}

bool is_data_path_key(std::string_view key) {
  if (!starts_with(key, kDataPathsSection) || key.size() <= kDataPathsSection.size() + 1) return false;
  if (key[kDataPathsSection.size()] != '.') return false;
  return key.find('.', kDataPathsSection.size() + 1) == std::string_view::npos;
}

void throw_unknown_key(const std::string& key, const std::string& where) {
  const std::vector<std::string> keys = value_keys();
  // A right name in the wrong section is the likeliest slip; otherwise the nearest spelling.
  std::vector<std::string> suggestions;
  const std::string leaf = last_component(key);
  for (const std::string& candidate : keys) {
    if (last_component(candidate) == leaf) suggestions.push_back(candidate);
  }
  if (suggestions.empty()) suggestions = closest_matches(key, keys, std::max<std::size_t>(2, key.size() / 5), 2);
  std::string message = "unknown key '" + key + "'";
  if (!suggestions.empty()) message += " (did you mean '" + join(suggestions, "' or '") + "'?)";
  if (!where.empty()) message += " in " + where;
  throw ConfigError(message);
}

void set_raw_value(RawConfig& raw, const std::string& key, RawValue value, const std::string& where) {
  const FieldSpec* spec = find_field(key);
  if (is_data_path_key(key)) {
    if (value.kind == RawValue::Kind::List) throw ConfigError(key + ": expected a path, got a list");
  } else if (spec == nullptr) {
    throw_unknown_key(key, where);
  } else if (is_data_paths_map(*spec)) {
    throw ConfigError(key + ": expected a mapping of dataset name to path" +
                      (where.empty() ? std::string() : " in " + where));
  }
  raw[key] = std::move(value);
}

void merge_yaml(RawConfig& raw, const YAML::Node& node, const std::string& package, const std::string& where) {
  if (!node || node.IsNull()) return;  // an empty section
  if (!node.IsMap()) {
    throw ConfigError((package.empty() ? std::string("top level") : package) + ": expected a mapping in " + where);
  }
  for (const auto& entry : node) {
    const std::string name = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    const std::string key = package.empty() ? name : package + "." + name;
    if (is_hydra_internal(key)) continue;
    if (is_section(key)) {
      if (!value.IsMap() && !value.IsNull()) throw ConfigError(key + ": expected a mapping, got a value in " + where);
      merge_yaml(raw, value, key, where);
    } else if (value.IsMap()) {
      if (find_field(key) == nullptr && !is_data_path_key(key)) throw_unknown_key(key, where);
      throw ConfigError(key + ": expected a value, got a mapping in " + where);
    } else if (value.IsSequence()) {
      std::vector<RawValue> items;
      for (const auto& item : value) {
        if (!item.IsScalar()) throw ConfigError(key + ": expected a list of scalars in " + where);
        items.push_back(RawValue::scalar(item.Scalar(), item.Tag() == "!"));
      }
      set_raw_value(raw, key, RawValue::list(std::move(items)), where);
    } else if (value.IsNull()) {
      set_raw_value(raw, key, RawValue::null(), where);
    } else {
      const bool quoted = value.Tag() == "!";  // yaml-cpp tags quoted scalars "!"
      const bool missing = !quoted && value.Scalar() == kMissingMarker;
      set_raw_value(raw, key, missing ? RawValue::missing() : RawValue::scalar(value.Scalar(), quoted), where);
    }
  }
}

RawConfig raw_from_config(const Config& config) {
  Config copy = config;  // the registry hands out mutable pointers; read them from a copy
  RawConfig raw;
  for (const FieldSpec& spec : config_fields()) {
    const std::string key = spec.key;
    const FieldRef ref = spec.ref(copy);
    if (auto* v = std::get_if<int64_t*>(&ref)) {
      raw[key] = RawValue::scalar(std::to_string(**v));
    } else if (auto* v = std::get_if<double*>(&ref)) {
      raw[key] = RawValue::scalar(format_double(**v));
    } else if (auto* v = std::get_if<bool*>(&ref)) {
      raw[key] = RawValue::scalar(**v ? "true" : "false");
    } else if (auto* v = std::get_if<std::string*>(&ref)) {
      raw[key] = RawValue::scalar(**v, true);
    } else if (auto* v = std::get_if<std::optional<std::string>*>(&ref)) {
      raw[key] = (*v)->has_value() ? RawValue::scalar(***v, true) : unset_value(spec);
    } else if (auto* v = std::get_if<std::optional<int64_t>*>(&ref)) {
      raw[key] = (*v)->has_value() ? RawValue::scalar(std::to_string(***v)) : unset_value(spec);
    } else if (auto* v = std::get_if<std::vector<std::string>*>(&ref)) {
      std::vector<RawValue> items;
      for (const std::string& item : **v) items.push_back(RawValue::scalar(item, true));
      raw[key] = RawValue::list(std::move(items));
    } else if (auto* v = std::get_if<EnumRef>(&ref)) {
      raw[key] = RawValue::scalar(enum_name(*v), true);
    } else if (auto* v = std::get_if<DataPaths*>(&ref)) {
      for (const auto& [name, path] : **v) {
        raw[key + "." + name] = path ? RawValue::scalar(*path, true) : RawValue::missing();
      }
    }
  }
  return raw;
}

Config config_from_raw(const RawConfig& raw) {
  Config config;
  for (const FieldSpec& spec : config_fields()) {
    const std::string key = spec.key;
    const FieldRef ref = spec.ref(config);
    if (auto* map = std::get_if<DataPaths*>(&ref)) {
      for (auto it = raw.lower_bound(key + "."); it != raw.end() && is_data_path_key(it->first); ++it) {
        const std::string name = it->first.substr(key.size() + 1);
        (**map)[name] =
            is_unset(it->second) ? std::nullopt : std::optional<std::string>(parse_string(it->first, it->second));
      }
      continue;
    }
    const auto found = raw.find(key);
    if (found == raw.end()) continue;  // keeps the typed default
    const RawValue& value = found->second;
    if (auto* v = std::get_if<int64_t*>(&ref)) {
      **v = parse_int(key, value);
    } else if (auto* v = std::get_if<double*>(&ref)) {
      **v = parse_float(key, value);
    } else if (auto* v = std::get_if<bool*>(&ref)) {
      **v = parse_bool(key, value);
    } else if (auto* v = std::get_if<std::string*>(&ref)) {
      **v = parse_string(key, value);
    } else if (auto* v = std::get_if<std::optional<std::string>*>(&ref)) {
      **v = is_unset(value) ? std::nullopt : std::optional<std::string>(parse_string(key, value));
    } else if (auto* v = std::get_if<std::optional<int64_t>*>(&ref)) {
      **v = is_unset(value) ? std::nullopt : std::optional<int64_t>(parse_int(key, value));
    } else if (auto* v = std::get_if<std::vector<std::string>*>(&ref)) {
      **v = parse_string_list(key, value);
    } else if (auto* v = std::get_if<EnumRef>(&ref)) {
      parse_enum(key, value, *v);
    }
  }
  return config;
}

}  // namespace ttt

// The field registry and the typed conversion between RawConfig and Config.
#include "config/schema.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "util/strings.h"

namespace ttt {
namespace {

// One registry entry: the key is spelled once, as the member path it reads.
#define TTT_FIELD(section, name, unset) \
  FieldSpec { #section "." #name, [](Config& c) -> FieldRef { return &c.section.name; }, UnsetStyle::unset }

#define TTT_OPTIMIZER_FIELDS(section)                                                           \
  TTT_FIELD(section, optimizer_type, Null), TTT_FIELD(section, init_lr, Null),                  \
      TTT_FIELD(section, end_lr, Null), TTT_FIELD(section, lr, Null),                           \
      TTT_FIELD(section, lr_warmup_steps, Null), TTT_FIELD(section, lr_decay_steps, Null),      \
      TTT_FIELD(section, b1, Null), TTT_FIELD(section, b2, Null),                               \
      TTT_FIELD(section, clip_gradient, Null), TTT_FIELD(section, weight_decay, Null),          \
      TTT_FIELD(section, bf16_momentum, Null), TTT_FIELD(section, emb_wd, Null)

std::vector<FieldSpec> build_registry() {
  return {
      TTT_FIELD(training, log_wandb, Null),
      TTT_FIELD(training, wandb_entity, Missing),
      TTT_FIELD(training, wandb_project, Missing),
      TTT_FIELD(training, wandb_key, Missing),
      TTT_FIELD(training, model_seed, Null),
      TTT_FIELD(training, data_seed, Null),
      TTT_FIELD(training, load_part, Null),
      TTT_FIELD(training, total_steps, Null),
      TTT_FIELD(training, break_step, Null),
      TTT_FIELD(training, save_milestone_freq, Null),
      TTT_FIELD(training, dataset_path, Missing),
      TTT_FIELD(training, dataset_name, Missing),
      TTT_FIELD(training, tokenizer_name, Null),
      TTT_FIELD(training, seq_length, Null),
      TTT_FIELD(training, global_batch_size, Null),
      TTT_FIELD(training, accum_steps, Null),
      TTT_FIELD(training, loader_workers, Null),
      TTT_FIELD(training, dummy_dataset, Null),
      TTT_FIELD(training, checkpoint_path, Null),
      TTT_FIELD(training, exp_dir, Null),
      TTT_FIELD(training, exp_folder, Null),
      TTT_FIELD(training, exp_name, Missing),
      TTT_FIELD(training, resume_exp_name, Null),
      TTT_FIELD(training, resume_step, Null),
      TTT_FIELD(training, eval_mode, Null),
      TTT_FIELD(training, train_mode, Null),
      TTT_FIELD(training, data_split, Null),
      TTT_FIELD(training, eval_split, Null),
      TTT_FIELD(training, inner_remat_freq, Null),
      TTT_OPTIMIZER_FIELDS(training.optimizer_outer),
      TTT_OPTIMIZER_FIELDS(training.optimizer_inner),
      TTT_FIELD(training, spec_outer, Null),
      TTT_FIELD(training, spec_inner, Null),
      TTT_FIELD(training, n_data_parallel, Null),
      TTT_FIELD(training, n_state_parallel, Null),
      TTT_FIELD(training, ilr_warmup_steps, Null),
      TTT_FIELD(training, ilr_init, Null),
      TTT_FIELD(training, eval_batch_size, Null),

      TTT_FIELD(model, name, Null),
      TTT_FIELD(model, vocab_size, Null),
      TTT_FIELD(model, hidden_size, Null),
      TTT_FIELD(model, intermediate_size, Null),
      TTT_FIELD(model, num_hidden_layers, Null),
      TTT_FIELD(model, num_attention_heads, Null),
      TTT_FIELD(model, mini_batch_size, Null),
      TTT_FIELD(model, sliding_window_size, Null),
      TTT_FIELD(model, seq_len, Null),
      TTT_FIELD(model, rms_norm_eps, Null),
      TTT_FIELD(model, initializer_range, Null),
      TTT_FIELD(model, bos_token_id, Null),
      TTT_FIELD(model, eos_token_id, Null),
      TTT_FIELD(model, resid_pdrop, Null),
      TTT_FIELD(model, embd_pdrop, Null),
      TTT_FIELD(model, attn_pdrop, Null),
      TTT_FIELD(model, tie_word_embeddings, Null),
      TTT_FIELD(model, remat_block, Null),
      TTT_FIELD(model, remat_block_bwd, Null),
      TTT_FIELD(model, remat_prefix_block, Null),
      TTT_FIELD(model, remat_attention, Null),
      TTT_FIELD(model, remat_attention_bwd, Null),
      TTT_FIELD(model, remat_mlp, Null),
      TTT_FIELD(model, remat_mlp_bwd, Null),
      TTT_FIELD(model, remat_rms, Null),
      TTT_FIELD(model, remat_rms_bwd, Null),
      TTT_FIELD(model, remat_multiple_gd, Null),
      TTT_FIELD(model, seq_modeling_block, Null),
      TTT_FIELD(model, rope_theta, Null),
      TTT_FIELD(model, output_size, Null),
      TTT_FIELD(model, compute_dtype, Null),
      TTT_FIELD(model, param_dtype, Null),
      TTT_FIELD(model, state_dtype, Null),
      TTT_FIELD(model, unroll_block_scan, Null),
      TTT_FIELD(model, unroll_inner_scan, Null),
      TTT_FIELD(model, force_flash, Null),
      TTT_FIELD(model, suffix_len, Null),
      TTT_FIELD(model, prime, Null),
      TTT_FIELD(model, qk_norm, Null),
      TTT_FIELD(model, pre_norm, Null),
      TTT_FIELD(model, post_norm, Null),
      TTT_FIELD(model, feed_forward_prime, Null),

      TTT_FIELD(backend, distributed, Null),
      TTT_FIELD(backend, coordinator_address, Null),
      TTT_FIELD(backend, num_processes, Null),
      TTT_FIELD(backend, process_id, Null),
      TTT_FIELD(backend, local_device_ids, Null),
      TTT_FIELD(backend, backend, Null),
      TTT_FIELD(backend, num_devices, Null),
      TTT_FIELD(backend, compilation_cache_dir, Null),
      TTT_FIELD(backend, device, Null),
      TTT_FIELD(backend, num_threads, Null),

      TTT_FIELD(checkpoint, float_dtype, Null),
      TTT_FIELD(checkpoint, save_optimizer_state, Null),
      TTT_FIELD(checkpoint, checkpoint_dir, Missing),
      TTT_FIELD(checkpoint, resume_checkpoint_dir, Missing),
      TTT_FIELD(checkpoint, save_freq, Null),
      TTT_FIELD(checkpoint, keep_last, Null),

      TTT_FIELD(deploy_paths, data, Missing),
      TTT_FIELD(deploy_paths, checkpoint, Missing),
  };
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
  const bool digits_only = text.size() > start && std::all_of(text.begin() + start, text.end(), [](char c) {
                             return c >= '0' && c <= '9';
                           });
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
    if (package.empty() && name == "hydra") continue;
    const std::string key = package.empty() ? name : package + "." + name;
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
        (**map)[name] = is_unset(it->second) ? std::nullopt : std::optional<std::string>(parse_string(it->first, it->second));
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
    }
  }
  return config;
}

}  // namespace ttt

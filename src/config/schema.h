// The registry of every configuration field (dotted key -> member of Config) and the untyped
// "raw" configuration the loader composes before converting it to a Config. Internal to the
// config library: components read Config, never these.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "config/config.h"

namespace YAML {
class Node;
}

namespace ttt {

// OmegaConf's MISSING marker: a value that must be set before it is used.
inline constexpr std::string_view kMissingMarker = "???";
// deploy_paths.data is the one free-form map: any dataset name may be added under it.
inline constexpr std::string_view kDataPathsSection = "deploy_paths.data";

// One value as written in a YAML file or on the command line, before typed conversion.
struct RawValue {
  enum class Kind { Null, Missing, Scalar, List };
  Kind kind = Kind::Null;
  std::string text;             // Scalar: the text without quotes
  bool quoted = false;          // Scalar: it was quoted, so it is a string even if it looks like `null`
  std::vector<RawValue> items;  // List: scalars

  static RawValue null() { return RawValue{}; }
  static RawValue missing() { return RawValue{Kind::Missing, "", false, {}}; }
  static RawValue scalar(std::string text, bool quoted = false) {
    return RawValue{Kind::Scalar, std::move(text), quoted, {}};
  }
  static RawValue list(std::vector<RawValue> items) { return RawValue{Kind::List, "", false, std::move(items)}; }

  // How the value reads in an error message: 'abc', null, ???, a list.
  std::string describe() const;
};

// The composed configuration before typed conversion: dotted key -> value. Every registry field is
// present (seeded from the typed defaults); deploy_paths.data.<name> entries come and go.
using RawConfig = std::map<std::string, RawValue>;

using DataPaths = std::map<std::string, std::optional<std::string>>;

// An enum member of Config, seen through its integer value and its spellings.
struct EnumRef {
  void* target;
  int (*get)(const void* target);
  void (*set)(void* target, int value);
  const std::vector<std::pair<int, std::string>>& (*spellings)();
};

using FieldRef = std::variant<int64_t*, double*, bool*, std::string*, std::optional<std::string>*,
                              std::optional<int64_t>*, std::vector<std::string>*, DataPaths*, EnumRef>;

template <typename E>
const std::vector<std::pair<int, std::string>>& enum_spellings_as_int() {
  static const std::vector<std::pair<int, std::string>> spellings = [] {
    std::vector<std::pair<int, std::string>> out;
    for (const auto& [value, name] : enum_spellings<E>()) out.emplace_back(static_cast<int>(value), name);
    return out;
  }();
  return spellings;
}

// The FieldRef of a Config member: enums become EnumRefs, everything else its pointer.
template <typename T>
FieldRef field_ref(T* member) {
  if constexpr (std::is_enum_v<T>) {
    return EnumRef{member, [](const void* t) { return static_cast<int>(*static_cast<const T*>(t)); },
                   [](void* t, int v) { *static_cast<T*>(t) = static_cast<T>(v); }, &enum_spellings_as_int<T>};
  } else {
    return member;
  }
}

// How an empty optional is written: `null` where the reference defaults to None, `???` where it
// defaults to MISSING (the value has to be provided before use).
enum class UnsetStyle { Null, Missing };

// What a field does in this implementation.
enum class FieldUse {
  kUsed,         // read by some component
  kParity,       // accepted so that the official configs load; selects nothing here
  kDefaultOnly,  // only its default is supported here; another value is a configuration error
};

// The closed range a numeric field must lie in (checked by validate_config for every such field).
// Integers compare exactly; a float must be finite, so NaN and infinities are rejected.
struct FieldBounds {
  long double min = 0;
  long double max = 0;
  bool min_exclusive = false;  // (min, max]: "positive" for floats
  bool max_exclusive = false;  // [min, max)
  bool set = false;
};

struct FieldSpec {
  const char* key;           // dotted, e.g. "training.optimizer_outer.lr"
  FieldRef (*ref)(Config&);  // the member this key reads and writes
  UnsetStyle unset;
  FieldUse use = FieldUse::kUsed;
  const char* note = "";  // kParity: what it does in the reference; kDefaultOnly: why only the default
  FieldBounds bounds;
};

// Every field, grouped by section in Config's declaration order (the order of to_yaml).
const std::vector<FieldSpec>& config_fields();
// The spec of `key`, or nullptr. `deploy_paths.data` itself is a field (the DataPaths map).
const FieldSpec* find_field(std::string_view key);
// True for "model", "training.optimizer_outer", "deploy_paths.data", ...: keys that hold keys.
bool is_section(std::string_view key);
// True for keys under `hydra` that are Hydra's own settings, not fields here (hydra.job_logging,
// hydra.launcher._target_, ...).
bool is_hydra_internal(std::string_view key);
// True for deploy_paths.data.<name>.
bool is_data_path_key(std::string_view key);

// Throws ConfigError "unknown key 'k' (did you mean 'x'?)", adding " in <where>" when given.
[[noreturn]] void throw_unknown_key(const std::string& key, const std::string& where);

// Stores `value` at `key` after checking that the key exists (or is a dataset path).
void set_raw_value(RawConfig& raw, const std::string& key, RawValue value, const std::string& where);
// Deep-merges a YAML mapping whose keys live under `package` ("" = the root). `where` names the
// file for error messages. Under the top-level `hydra:` section only hydra.mode and the
// hydra.launcher.* fields are read; Hydra's other settings there are skipped (see
// is_hydra_internal). The caller removes a file's `defaults` list first.
void merge_yaml(RawConfig& raw, const YAML::Node& node, const std::string& package, const std::string& where);

// A command-line value: YAML-like scalar, quoted string, `null`, `???` or a list `[a,'b c']`.
RawValue parse_override_value(const std::string& text);

// The typed defaults (or any Config) as raw values.
RawConfig raw_from_config(const Config& config);
// Typed conversion; interpolations must be resolved. Throws ConfigError naming the key.
Config config_from_raw(const RawConfig& raw);
// YAML text of every value, grouped by section in registry order.
std::string emit_yaml(const RawConfig& raw);
// One value as emit_yaml writes it.
std::string render_yaml_value(const RawValue& value);

// Replaces every ${a.b}, ${a.b[${c}]} and ${oc.env:NAME[,default]} by its value, against the
// whole tree (config.cpp). A reference that reaches ??? yields ???; cycles throw.
void resolve_interpolations(RawConfig& raw);

}  // namespace ttt

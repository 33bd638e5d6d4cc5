// require(), and the raw-value helpers of schema.h that are about text: describing values in
// messages, command-line values, emitting YAML, and ${...} interpolation.
#include "config/config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include "config/schema.h"
#include "util/strings.h"

namespace ttt {

template <>
const std::vector<std::pair<TrainMode, std::string>>& enum_spellings<TrainMode>() {
  static const std::vector<std::pair<TrainMode, std::string>> s = {{TrainMode::kPretrain, "pretrain"},
                                                                   {TrainMode::kMeta, "meta"}};
  return s;
}

template <>
const std::vector<std::pair<SeqModelingBlock, std::string>>& enum_spellings<SeqModelingBlock>() {
  static const std::vector<std::pair<SeqModelingBlock, std::string>> s = {
      {SeqModelingBlock::kSelfAttention, "self_attention"},  {SeqModelingBlock::kSlidingWindow, "SWA"},
      {SeqModelingBlock::kTttLinear, "ttt_linear"},          {SeqModelingBlock::kTttMlp, "ttt_mlp"},
      {SeqModelingBlock::kTttLinearBase, "ttt_linear_base"}, {SeqModelingBlock::kTttMlpBase, "ttt_mlp_base"}};
  return s;
}

template <>
const std::vector<std::pair<DType, std::string>>& enum_spellings<DType>() {
  static const std::vector<std::pair<DType, std::string>> s = {{DType::kFloat32, "fp32"},
                                                               {DType::kBFloat16, "bf16"},
                                                               {DType::kFloat32, "float32"},
                                                               {DType::kBFloat16, "bfloat16"}};
  return s;
}

template <>
const std::vector<std::pair<LoadPart, std::string>>& enum_spellings<LoadPart>() {
  static const std::vector<std::pair<LoadPart, std::string>> s = {
      {LoadPart::kNone, "none"}, {LoadPart::kParams, "params"}, {LoadPart::kAll, "all"}};
  return s;
}

template <>
const std::vector<std::pair<OptimizerType, std::string>>& enum_spellings<OptimizerType>() {
  static const std::vector<std::pair<OptimizerType, std::string>> s = {{OptimizerType::kAdamW, "adamw"},
                                                                       {OptimizerType::kSGD, "sgd"}};
  return s;
}

template <>
const std::vector<std::pair<FeedForwardPrime, std::string>>& enum_spellings<FeedForwardPrime>() {
  static const std::vector<std::pair<FeedForwardPrime, std::string>> s = {{FeedForwardPrime::kSwiGLU, "swiglu"}};
  return s;
}

template <>
const std::vector<std::pair<HydraMode, std::string>>& enum_spellings<HydraMode>() {
  static const std::vector<std::pair<HydraMode, std::string>> s = {{HydraMode::kRun, "RUN"},
                                                                   {HydraMode::kMultirun, "MULTIRUN"}};
  return s;
}

template <>
const std::vector<std::pair<RopePrecision, std::string>>& enum_spellings<RopePrecision>() {
  static const std::vector<std::pair<RopePrecision, std::string>> s = {{RopePrecision::kFloat32, "fp32"},
                                                                       {RopePrecision::kFloat64, "fp64"}};
  return s;
}

const std::string& require(const std::optional<std::string>& value, const std::string& key) {
  if (!value) {
    throw ConfigError(key + " is not set (" + std::string(kMissingMarker) + "); set it in a config file or on the " +
                      "command line, e.g. " + key + "=<value>");
  }
  return *value;
}

std::string RawValue::describe() const {
  switch (kind) {
    case Kind::Null:
      return "null";
    case Kind::Missing:
      return std::string(kMissingMarker);
    case Kind::List:
      return "a list";
    case Kind::Scalar:
      break;
  }
  return "'" + text + "'";
}

// ---- command-line values ----

namespace {

RawValue parse_override_scalar(const std::string& text) {
  if (text.size() >= 2 && (text.front() == '\'' || text.front() == '"') && text.back() == text.front()) {
    return RawValue::scalar(text.substr(1, text.size() - 2), true);
  }
  if (text.empty()) return RawValue::scalar("", true);  // Hydra: `key=` is the empty string
  if (text == "null" || text == "Null" || text == "NULL" || text == "~") return RawValue::null();
  if (text == kMissingMarker) return RawValue::missing();
  return RawValue::scalar(text);
}

}  // namespace

RawValue parse_override_value(const std::string& text) {
  const std::string value = trim(text);
  if (value.size() < 2 || value.front() != '[' || value.back() != ']') return parse_override_scalar(value);
  std::vector<RawValue> items;
  const std::string inner = trim(value.substr(1, value.size() - 2));
  if (inner.empty()) return RawValue::list({});
  for (const std::string& piece : split_top_level(inner, ',')) {
    if (!piece.empty() && (piece.front() == '[' || piece.front() == '{')) {
      throw ConfigError("'" + value + "': nested lists and mappings are not supported");
    }
    items.push_back(parse_override_scalar(piece));
  }
  return RawValue::list(std::move(items));
}

// ---- YAML output ----

namespace {

bool is_plain_safe(const std::string& text) {
  if (text.empty()) return false;
  static const std::set<std::string> reserved = {"null", "~", "true", "false", "yes", "no", "on", "off", "y", "n"};
  if (reserved.count(to_lower(text)) > 0) return false;
  const char first = text.front();
  if (!(std::isalnum(static_cast<unsigned char>(first)) || first == '.' || first == '/' || first == '_')) return false;
  for (char c : text) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '/' || c == '_' || c == '-' || c == '+')) {
      return false;
    }
  }
  // A string that reads as a number stays a string for other YAML readers too.
  char* end = nullptr;
  std::strtod(text.c_str(), &end);
  return end != text.c_str() + text.size();
}

std::string quote_string(const std::string& text) {
  bool has_control = false;
  for (char c : text) has_control = has_control || static_cast<unsigned char>(c) < 0x20;
  if (!has_control) return "'" + replace_all(text, "'", "''") + "'";
  std::string quoted = "\"";
  for (char c : text) {
    switch (c) {
      case '\\':
        quoted += "\\\\";
        break;
      case '"':
        quoted += "\\\"";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\t':
        quoted += "\\t";
        break;
      case '\r':
        quoted += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\x%02x", static_cast<unsigned char>(c));
          quoted += escaped;
        } else {
          quoted += c;
        }
    }
  }
  return quoted + "\"";
}

std::string render_value(const RawValue& value) {
  switch (value.kind) {
    case RawValue::Kind::Null:
      return "null";
    case RawValue::Kind::Missing:
      return std::string(kMissingMarker);
    case RawValue::Kind::List: {
      std::vector<std::string> items;
      for (const RawValue& item : value.items) items.push_back(render_value(item));
      return "[" + join(items, ", ") + "]";
    }
    case RawValue::Kind::Scalar:
      break;
  }
  if (!value.quoted) return value.text;  // numbers and booleans written by raw_from_config
  // A literal "${" must not be read back as an interpolation.
  const std::string text = replace_all(value.text, "${", "\\${");
  return is_plain_safe(text) ? text : quote_string(text);
}

std::string render_key(const std::string& name) { return is_plain_safe(name) ? name : quote_string(name); }

}  // namespace

std::string render_yaml_value(const RawValue& value) { return render_value(value); }

std::string emit_yaml(const RawConfig& raw) {
  // (dotted key, rendered value) in registry order; the data-paths map expands into its entries.
  std::vector<std::pair<std::string, std::string>> lines;
  for (const FieldSpec& spec : config_fields()) {
    const std::string key = spec.key;
    if (key == kDataPathsSection) {
      bool any = false;
      for (auto it = raw.lower_bound(key + "."); it != raw.end() && is_data_path_key(it->first); ++it) {
        lines.emplace_back(it->first, render_value(it->second));
        any = true;
      }
      if (!any) lines.emplace_back(key, "{}");
      continue;
    }
    const auto found = raw.find(key);
    if (found != raw.end()) lines.emplace_back(key, render_value(found->second));
  }

  std::string yaml;
  std::vector<std::string> open_sections;
  for (const auto& [key, rendered] : lines) {
    std::vector<std::string> path =
        key == kDataPathsSection ? split(key, '.') : split(key.substr(0, key.rfind('.')), '.');
    const std::string leaf = key == kDataPathsSection ? std::string() : key.substr(key.rfind('.') + 1);
    if (key == kDataPathsSection) path.pop_back();
    std::size_t common = 0;
    while (common < open_sections.size() && common < path.size() && open_sections[common] == path[common]) ++common;
    open_sections.resize(common);
    for (std::size_t depth = common; depth < path.size(); ++depth) {
      if (depth == 0 && !yaml.empty()) yaml += "\n";
      yaml += std::string(2 * depth, ' ') + path[depth] + ":\n";
      open_sections.push_back(path[depth]);
    }
    const std::string name = leaf.empty() ? std::string("data") : render_key(leaf);
    yaml += std::string(2 * path.size(), ' ') + name + ": " + rendered + "\n";
  }
  return yaml;
}

// ---- interpolation ----

namespace {

class InterpolationResolver {
 public:
  explicit InterpolationResolver(RawConfig& raw) : raw_(raw) {}

  void resolve_all() {
    for (auto& entry : raw_) resolve_key(entry.first);
  }

 private:
  enum class State { InProgress, Done };

  const RawValue& resolve_key(const std::string& key) {
    RawValue& value = raw_.at(key);
    const auto state = states_.find(key);
    if (state != states_.end() && state->second == State::Done) return value;
    if (state != states_.end()) {
      std::string cycle;
      const auto first = std::find(stack_.begin(), stack_.end(), key);
      for (auto it = first; it != stack_.end(); ++it) cycle += *it + " -> ";
      throw ConfigError("interpolation cycle: " + cycle + key);
    }
    states_[key] = State::InProgress;
    stack_.push_back(key);
    RawValue resolved = resolve_value(value, key);
    stack_.pop_back();
    states_[key] = State::Done;
    value = std::move(resolved);
    return value;
  }

  RawValue resolve_value(const RawValue& value, const std::string& key) {
    if (value.kind == RawValue::Kind::Scalar) return resolve_text(value.text, value.quoted, key);
    if (value.kind != RawValue::Kind::List) return value;
    RawValue list = value;
    for (RawValue& item : list.items) {
      if (item.kind != RawValue::Kind::Scalar) continue;
      item = resolve_text(item.text, item.quoted, key);
      if (item.kind != RawValue::Kind::Scalar) throw ConfigError(key + ": a list item resolved to " + item.describe());
    }
    return list;
  }

  // Splits `text` into literal pieces and ${...} expressions (nested ${} kept whole), then joins
  // their values. A text that is exactly one ${...} takes the referenced value as it is.
  RawValue resolve_text(const std::string& text, bool quoted, const std::string& key) {
    if (text.find("${") == std::string::npos) return RawValue::scalar(text, quoted);
    std::string joined;
    bool missing = false;
    std::size_t pos = 0;
    while (pos < text.size()) {
      if (text.compare(pos, 3, "\\${") == 0) {  // escaped: a literal "${"
        joined += "${";
        pos += 3;
        continue;
      }
      if (text.compare(pos, 2, "${") != 0) {
        joined += text[pos++];
        continue;
      }
      const std::size_t close = matching_brace(text, pos + 2, key);
      const std::string expression = text.substr(pos + 2, close - pos - 2);
      const RawValue value = lookup(expression, key);
      if (pos == 0 && close == text.size() - 1) return value;
      if (value.kind == RawValue::Kind::List) {
        throw ConfigError(key + ": '${" + expression + "}' is a list and cannot be part of a string");
      }
      missing = missing || value.kind != RawValue::Kind::Scalar;  // ??? or null inside a string
      joined += value.text;
      pos = close + 1;
    }
    return missing ? RawValue::missing() : RawValue::scalar(joined, quoted);
  }

  static std::size_t matching_brace(const std::string& text, std::size_t from, const std::string& key) {
    int depth = 1;
    for (std::size_t i = from; i < text.size(); ++i) {
      if (text[i] == '{') ++depth;
      if (text[i] == '}' && --depth == 0) return i;
    }
    throw ConfigError(key + ": unterminated interpolation in '" + text + "'");
  }

  // The value of one ${expression}: a key path (a.b.c or a.b[c]) or oc.env:NAME[,default].
  RawValue lookup(const std::string& expression, const std::string& key) {
    const RawValue path_value = resolve_text(trim(expression), false, key);
    if (path_value.kind != RawValue::Kind::Scalar) return RawValue::missing();
    std::string path = path_value.text;
    if (starts_with(path, "oc.env:")) return environment_value(path.substr(7), key);
    path = replace_all(replace_all(path, "[", "."), "]", "");
    if (raw_.count(path) > 0) return resolve_key(path);
    // deploy_paths.data is open: a dataset nobody gave a path to is simply not set yet.
    if (is_data_path_key(path)) return RawValue::missing();
    if (is_section(path)) throw ConfigError(key + ": '${" + expression + "}' names a section, not a value");
    throw ConfigError(key + ": '${" + expression + "}' refers to unknown key '" + path + "'");
  }

  static RawValue environment_value(const std::string& arguments, const std::string& key) {
    const std::size_t comma = arguments.find(',');
    const std::string name = trim(arguments.substr(0, comma));
    if (const char* value = std::getenv(name.c_str())) return RawValue::scalar(value, true);
    if (comma == std::string::npos) {
      throw ConfigError(key + ": environment variable '" + name + "' is not set");
    }
    return parse_override_value(arguments.substr(comma + 1));
  }

  RawConfig& raw_;
  std::map<std::string, State> states_;
  std::vector<std::string> stack_;
};

}  // namespace

void resolve_interpolations(RawConfig& raw) { InterpolationResolver(raw).resolve_all(); }

}  // namespace ttt

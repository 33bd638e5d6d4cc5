// Hydra-style composition (a practical subset, see docs/configuration.md): defaults lists with
// group selections, `override /group: option`, `_self_` ordering and `# @package` headers; then
// command-line selections and key overrides, interpolation, typed conversion and validation.
#include "config/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/schema.h"
#include "config/validate.h"
#include "util/strings.h"

namespace ttt {
namespace {

namespace fs = std::filesystem;

// One item of a defaults list.
struct DefaultsEntry {
  enum class Kind { Self, Config, Group };
  Kind kind = Kind::Self;
  bool is_override = false;
  std::string target;                  // Config: config path ("training/base_training"); Group: group ("model")
  std::optional<std::string> option;   // Group: the selected option; nullopt selects nothing
  std::optional<std::string> package;  // `@package` written in the entry
  bool from_command_line = false;      // command-line selections beat `override` entries in files
};

struct ConfigFile {
  std::string name;   // path below the config dir without ".yaml", e.g. "model/125m"
  std::string where;  // for messages: "model/125m.yaml"
  YAML::Node body;
  std::vector<DefaultsEntry> defaults;  // always holds `_self_` (appended when not written)
  std::optional<std::string> header_package;
};

// Names the reference registers as structured configs (ConfigStore): here, the typed defaults.
bool is_schema_config(const std::string& name) {
  const std::string base = name.substr(name.rfind('/') + 1);
  return base == "base_training" || base == "base_model" || base == "base_backend" || base == "base_checkpoint" ||
         base == "base_deploy_paths" || base == "base_config";
}

std::string parent_dir(const std::string& name) {
  const std::size_t slash = name.rfind('/');
  return slash == std::string::npos ? std::string() : name.substr(0, slash);
}

// "/training/base_training" is absolute; "base_model" is relative to the containing file's folder.
std::string absolute_name(const std::string& name, const std::string& containing_dir) {
  if (starts_with(name, "/")) return name.substr(1);
  return containing_dir.empty() ? name : containing_dir + "/" + name;
}

std::optional<std::string> header_package(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string trimmed = trim(line);
    if (trimmed.empty()) continue;
    if (trimmed[0] != '#') break;  // the header must come before any content
    const std::string comment = trim(trimmed.substr(1));
    if (starts_with(comment, "@package")) return trim(comment.substr(8));
  }
  return std::nullopt;
}

DefaultsEntry parse_defaults_entry(const YAML::Node& item, const std::string& containing_dir,
                                   const std::string& where) {
  DefaultsEntry entry;
  std::string spelled;
  if (item.IsScalar()) {
    spelled = item.Scalar();
    if (spelled == "_self_") return entry;
    entry.kind = DefaultsEntry::Kind::Config;
  } else if (item.IsMap() && item.size() == 1) {
    const auto pair = *item.begin();
    spelled = trim(pair.first.Scalar());
    entry.kind = DefaultsEntry::Kind::Group;
    if (starts_with(spelled, "override ")) {
      entry.is_override = true;
      spelled = trim(spelled.substr(9));
    }
    if (pair.second.IsScalar()) {
      entry.option = pair.second.Scalar();
    } else if (!pair.second.IsNull()) {
      throw ConfigError(where + ": defaults entry '" + spelled + "' must select one option");
    }
  } else {
    throw ConfigError(where + ": a defaults entry must be `name`, `group: option` or `override /group: option`");
  }
  const std::size_t at = spelled.find('@');
  if (at != std::string::npos) entry.package = spelled.substr(at + 1);
  entry.target = absolute_name(spelled.substr(0, at), containing_dir);
  return entry;
}

// "_global_" is the root, "_global_.x" is x; anything else is relative to `parent`.
std::string resolve_package(const std::string& written, const std::string& parent, const std::string& group_default) {
  if (written == "_global_") return "";
  if (starts_with(written, "_global_.")) return written.substr(9);
  if (written == "_group_") return group_default;
  return parent.empty() ? written : parent + "." + written;
}

// Reads and caches the YAML files of one config tree.
class ConfigTree {
 public:
  explicit ConfigTree(std::string root) : root_(std::move(root)) {}

  bool has_group(const std::string& group) const { return fs::is_directory(fs::path(root_) / group); }

  // nullptr for the reference's structured configs (base_model, ...), which are our typed defaults.
  const ConfigFile* load(const std::string& name, const std::string& group = "") {
    if (const auto cached = files_.find(name); cached != files_.end()) return &cached->second;
    const fs::path path = fs::path(root_) / (name + ".yaml");
    if (!fs::is_regular_file(path)) {
      if (is_schema_config(name)) return nullptr;
      throw ConfigError("no config '" + name + "' (looked for " + path.string() + ")" + suggest(name, group));
    }
    std::ifstream stream(path);
    std::stringstream text;
    text << stream.rdbuf();
    ConfigFile file;
    file.name = name;
    file.where = name + ".yaml";
    file.header_package = header_package(text.str());
    try {
      file.body = YAML::Load(text.str());
    } catch (const YAML::Exception& error) {
      throw ConfigError(file.where + ": " + error.what());
    }
    if (!file.body.IsNull() && !file.body.IsMap()) throw ConfigError(file.where + ": expected a mapping");
    bool has_self = false;
    if (file.body.IsMap() && file.body["defaults"]) {
      const YAML::Node defaults = file.body["defaults"];
      if (!defaults.IsSequence()) throw ConfigError(file.where + ": 'defaults' must be a list");
      for (const auto& item : defaults) {
        file.defaults.push_back(parse_defaults_entry(item, parent_dir(name), file.where));
        has_self = has_self || file.defaults.back().kind == DefaultsEntry::Kind::Self;
      }
      file.body.remove("defaults");  // not a key of the configuration
    }
    if (!has_self) file.defaults.push_back(DefaultsEntry{});  // Hydra 1.1+: own content last
    return &files_.emplace(name, std::move(file)).first->second;
  }

 private:
  // "; did you mean 'x'?" from the options of `group`, else "; available in dir: a, b".
  std::string suggest(const std::string& name, const std::string& group) const {
    const std::string scope = group.empty() ? parent_dir(name) : group;
    const std::string wanted = group.empty() ? name.substr(name.rfind('/') + 1) : name.substr(group.size() + 1);
    std::vector<std::string> options;
    std::error_code error;
    for (fs::recursive_directory_iterator it(fs::path(root_) / scope, error), end; !error && it != end; ++it) {
      if (it->path().extension() == ".yaml") {
        options.push_back(fs::relative(it->path(), fs::path(root_) / scope).replace_extension().generic_string());
      }
    }
    std::sort(options.begin(), options.end());
    std::vector<std::string> close = closest_matches(wanted, options, std::max<std::size_t>(2, wanted.size() / 4));
    // Only the nearest (ties included): a second-best guess is noise.
    while (close.size() > 1 && edit_distance(wanted, close.back()) > edit_distance(wanted, close.front()))
      close.pop_back();
    if (!close.empty()) return "; did you mean '" + join(close, "' or '") + "'?";
    // Otherwise what the folder holds: options, and sub-folders written with a trailing '/'.
    std::vector<std::string> siblings;
    const std::string wanted_dir = parent_dir(wanted);
    const std::string prefix = wanted_dir.empty() ? std::string() : wanted_dir + "/";
    for (const std::string& option : options) {
      if (!starts_with(option, prefix)) continue;
      const std::string rest = option.substr(prefix.size());
      const std::size_t slash = rest.find('/');
      const std::string child = slash == std::string::npos ? rest : rest.substr(0, slash + 1);
      if (std::find(siblings.begin(), siblings.end(), child) == siblings.end()) siblings.push_back(child);
    }
    if (siblings.empty() || siblings.size() > 12) return "";
    return "; available in " + (wanted_dir.empty() ? scope : scope + "/" + wanted_dir) + ": " + join(siblings, ", ");
  }

  std::string root_;
  std::map<std::string, ConfigFile> files_;
};

// ---- command-line words ----

struct CommandLineWord {
  enum class Action { Set, Add, ForceSet, Delete };
  Action action = Action::Set;
  std::string key;  // group name or dotted key
  std::string value;
  std::string spelled;  // as typed, for messages
};

CommandLineWord parse_word(const std::string& spelled) {
  CommandLineWord word;
  word.spelled = spelled;
  std::string rest = spelled;
  if (starts_with(rest, "~")) {
    word.action = CommandLineWord::Action::Delete;
    rest = rest.substr(1);
  } else if (starts_with(rest, "++")) {
    word.action = CommandLineWord::Action::ForceSet;
    rest = rest.substr(2);
  } else if (starts_with(rest, "+")) {
    word.action = CommandLineWord::Action::Add;
    rest = rest.substr(1);
  }
  const std::size_t equals = rest.find('=');
  if (equals == std::string::npos && word.action != CommandLineWord::Action::Delete) {
    throw ConfigError("'" + spelled + "': expected key=value (e.g. training.seq_length=32768 or +experiment=<name>)");
  }
  word.key = trim(rest.substr(0, equals));
  if (equals != std::string::npos) word.value = rest.substr(equals + 1);
  if (word.key.empty()) throw ConfigError("'" + spelled + "': empty key");
  return word;
}

// `model=125m`, `+experiment=...`: words whose key is a config group rather than a dotted key.
bool is_group_word(const CommandLineWord& word, const ConfigTree& tree, const std::vector<DefaultsEntry>& primary) {
  if (word.key.find('.') != std::string::npos) return false;
  for (const DefaultsEntry& entry : primary) {
    if (entry.kind == DefaultsEntry::Kind::Group && entry.target == word.key) return true;
  }
  return tree.has_group(word.key);
}

DefaultsEntry* find_group(std::vector<DefaultsEntry>& entries, const std::string& group) {
  for (DefaultsEntry& entry : entries) {
    if (entry.kind == DefaultsEntry::Kind::Group && !entry.is_override && entry.target == group) return &entry;
  }
  return nullptr;
}

void apply_group_word(std::vector<DefaultsEntry>& primary, const CommandLineWord& word) {
  DefaultsEntry* existing = find_group(primary, word.key);
  switch (word.action) {
    case CommandLineWord::Action::Add:
      if (existing != nullptr) {
        throw ConfigError("'" + word.spelled + "': " + word.key + " is already in the defaults list; use " + word.key +
                          "=" + word.value + " to change it");
      }
      primary.push_back(DefaultsEntry{DefaultsEntry::Kind::Group, false, word.key, word.value, std::nullopt, true});
      return;
    case CommandLineWord::Action::Set:
    case CommandLineWord::Action::ForceSet:
      if (existing == nullptr) {
        if (word.action == CommandLineWord::Action::ForceSet) {
          primary.push_back(DefaultsEntry{DefaultsEntry::Kind::Group, false, word.key, word.value, std::nullopt, true});
          return;
        }
        throw ConfigError("'" + word.spelled + "': " + word.key + " is not in the defaults list; use +" + word.key +
                          "=" + word.value + " to add it");
      }
      existing->option = word.value;
      existing->from_command_line = true;
      return;
    case CommandLineWord::Action::Delete:
      if (existing == nullptr)
        throw ConfigError("'" + word.spelled + "': " + word.key + " is not in the defaults list");
      existing->option = std::nullopt;
      existing->from_command_line = true;
      return;
  }
}

void apply_key_word(RawConfig& raw, const CommandLineWord& word) {
  const std::string& key = word.key;
  if (is_hydra_internal(key) && !starts_with(key, "hydra.launcher.")) {
    throw ConfigError("'" + word.spelled + "': Hydra's own settings have no effect here (only hydra.mode and " +
                      "hydra.launcher.* are read)");
  }
  if (is_section(key)) throw ConfigError("'" + word.spelled + "': " + key + " is a section; set its keys one by one");
  switch (word.action) {
    case CommandLineWord::Action::Delete:
      if (!is_data_path_key(key)) {
        throw ConfigError("'" + word.spelled + "': only deploy_paths.data.<name> entries can be deleted; " + key +
                          " always exists (set it to null or " + std::string(kMissingMarker) + " instead)");
      }
      raw.erase(key);
      return;
    case CommandLineWord::Action::Add:
      if (find_field(key) != nullptr) {
        throw ConfigError("'" + word.spelled + "': " + key + " already exists; drop the '+' to override it");
      }
      if (!is_data_path_key(key)) {
        try {
          throw_unknown_key(key, "");
        } catch (const ConfigError& error) {
          throw ConfigError(std::string(error.what()) + "; '+' can only add dataset paths (deploy_paths.data.<name>)");
        }
      }
      break;
    case CommandLineWord::Action::Set:
    case CommandLineWord::Action::ForceSet:
      break;
  }
  set_raw_value(raw, key, parse_override_value(word.value), "");
}

// ---- composition ----

class Composer {
 public:
  explicit Composer(const std::string& config_dir) : tree_(config_dir) {}

  // Merges config.yaml's defaults list (with the command line's group words applied) into `raw`
  // and returns the key words, still to be applied.
  std::vector<CommandLineWord> compose(const std::vector<std::string>& spelled_words, RawConfig& raw) {
    const ConfigFile* primary = tree_.load("config");
    std::vector<DefaultsEntry> entries = primary->defaults;
    std::vector<CommandLineWord> key_words;
    for (const std::string& spelled : spelled_words) {
      CommandLineWord word = parse_word(spelled);
      if (is_group_word(word, tree_, entries)) {
        apply_group_word(entries, word);
      } else {
        key_words.push_back(std::move(word));
      }
    }
    apply_file_overrides(entries);
    std::vector<std::string> stack{primary->name};
    expand_entries(*primary, entries, "", raw, stack);
    return key_words;
  }

 private:
  // `override /group: option` entries anywhere in the selected files change the selections of the
  // primary list (Hydra applies them before loading); repeat until nothing changes.
  void apply_file_overrides(std::vector<DefaultsEntry>& entries) {
    for (int round = 0; round < 16; ++round) {
      bool changed = false;
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].kind != DefaultsEntry::Kind::Group || !entries[i].option) continue;
        std::vector<std::pair<DefaultsEntry, std::string>> overrides;
        collect_overrides(entries[i].target + "/" + *entries[i].option, entries[i].target, overrides, 0);
        for (const auto& [override_entry, where] : overrides) {
          DefaultsEntry* selected = find_group(entries, override_entry.target);
          if (selected == nullptr) {
            throw ConfigError(where + ": 'override /" + override_entry.target +
                              "' matches no group in the defaults list");
          }
          if (selected->from_command_line || selected->option == override_entry.option) continue;
          selected->option = override_entry.option;
          changed = true;
        }
      }
      if (!changed) return;
    }
    throw ConfigError("defaults-list overrides keep changing each other (a cycle of 'override' entries)");
  }

  void collect_overrides(const std::string& name, const std::string& group,
                         std::vector<std::pair<DefaultsEntry, std::string>>& out, int depth) {
    if (depth > 16) throw ConfigError(name + ".yaml: defaults lists nest too deeply (a cycle?)");
    const ConfigFile* file = tree_.load(name, group);
    if (file == nullptr) return;
    for (const DefaultsEntry& entry : file->defaults) {
      if (entry.kind == DefaultsEntry::Kind::Group && entry.is_override) {
        out.emplace_back(entry, file->where);
      } else if (entry.kind == DefaultsEntry::Kind::Config) {
        collect_overrides(entry.target, "", out, depth + 1);
      } else if (entry.kind == DefaultsEntry::Kind::Group && entry.option) {
        collect_overrides(entry.target + "/" + *entry.option, entry.target, out, depth + 1);
      }
    }
  }

  void expand_entries(const ConfigFile& file, const std::vector<DefaultsEntry>& entries, const std::string& package,
                      RawConfig& raw, std::vector<std::string>& stack) {
    for (const DefaultsEntry& entry : entries) {
      if (entry.kind == DefaultsEntry::Kind::Self) {
        merge_yaml(raw, file.body, package, file.where);
      } else if (entry.kind == DefaultsEntry::Kind::Config) {
        if (const ConfigFile* child = tree_.load(entry.target)) {
          const std::string group_package = replace_all(parent_dir(entry.target), "/", ".");
          expand_file(*child, child_package(entry, *child, package, group_package), raw, stack);
        }
      } else if (!entry.is_override && entry.option) {
        if (const ConfigFile* child = tree_.load(entry.target + "/" + *entry.option, entry.target)) {
          const std::string group_package = replace_all(entry.target, "/", ".");
          expand_file(*child, child_package(entry, *child, package, group_package), raw, stack);
        }
      }
    }
  }

  void expand_file(const ConfigFile& file, const std::string& package, RawConfig& raw,
                   std::vector<std::string>& stack) {
    if (std::find(stack.begin(), stack.end(), file.name) != stack.end()) {
      throw ConfigError(file.where + ": defaults list includes itself (" + join(stack, " -> ") + " -> " + file.name +
                        ")");
    }
    stack.push_back(file.name);
    expand_entries(file, file.defaults, package, raw, stack);
    stack.pop_back();
  }

  static std::string child_package(const DefaultsEntry& entry, const ConfigFile& child, const std::string& parent,
                                   const std::string& group_package) {
    if (entry.package) return resolve_package(*entry.package, parent, group_package);
    if (child.header_package) return resolve_package(*child.header_package, "", group_package);
    return group_package;
  }

  ConfigTree tree_;
};

Config finish(RawConfig raw, bool validate) {
  resolve_interpolations(raw);
  Config config = config_from_raw(raw);
  if (validate) validate_config(config);
  return config;
}

}  // namespace

std::string& config_dir_setting() {
  static std::string dir;
  return dir;
}

void set_config_dir(const std::string& dir) { config_dir_setting() = dir; }

std::string find_config_dir() {
  namespace fs = std::filesystem;
  auto is_tree = [](const fs::path& dir) { return fs::is_regular_file(dir / "config.yaml"); };
  const auto describe = [](const std::string& what, const std::string& dir) {
    return what + " " + dir + " has no config.yaml";
  };
  if (!config_dir_setting().empty()) {
    if (!is_tree(config_dir_setting())) throw ConfigError(describe("--config-dir", config_dir_setting()));
    return config_dir_setting();
  }
  if (const char* env = std::getenv("TTT_CONFIG_DIR"); env != nullptr && *env != '\0') {
    if (!is_tree(env)) throw ConfigError(describe("TTT_CONFIG_DIR", env));
    return env;
  }
  std::vector<std::string> looked;
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    const fs::path installed = (exe.parent_path() / TTT_CONFIGS_FROM_BINDIR).lexically_normal();
    if (is_tree(installed)) return installed.string();
    looked.push_back(installed.string());
  }
  if (is_tree(TTT_SOURCE_CONFIG_DIR)) return TTT_SOURCE_CONFIG_DIR;
  looked.push_back(TTT_SOURCE_CONFIG_DIR);
  throw ConfigError("no configuration tree found (looked in " + join(looked, ", ") +
                    "); pass --config-dir DIR or set TTT_CONFIG_DIR");
}

Config load_config(const std::vector<std::string>& overrides, const LoadOptions& options) {
  RawConfig raw = raw_from_config(Config{});
  Composer composer(options.config_dir.empty() ? find_config_dir() : options.config_dir);
  for (const CommandLineWord& word : composer.compose(overrides, raw)) apply_key_word(raw, word);
  return finish(std::move(raw), options.validate);
}

std::string to_yaml(const Config& config) {
  return "# Resolved TTT-E2E configuration: every field, interpolations resolved; " + std::string(kMissingMarker) +
         " = not set.\n" + emit_yaml(raw_from_config(config));
}

Config load_resolved_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream stream(path);
  if (!stream) throw ConfigError("cannot read resolved config '" + path + "'");
  std::stringstream text;
  text << stream.rdbuf();
  return parse_resolved_config(text.str(), path, overrides);
}

Config parse_resolved_config(const std::string& text, const std::string& path,
                             const std::vector<std::string>& overrides) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& error) {
    throw ConfigError(path + ": " + error.what());
  }
  // A resolved config records every field; one without model.rope_precision was written before
  // that field existed, by a run that computed its RoPE table in float64.
  Config written_before_the_field;
  written_before_the_field.model.rope_precision = RopePrecision::kFloat64;
  RawConfig raw = raw_from_config(written_before_the_field);
  merge_yaml(raw, node, "", path);
  for (const std::string& spelled : overrides) {
    const CommandLineWord word = parse_word(spelled);
    if (word.key.find('.') == std::string::npos) {
      throw ConfigError("'" + spelled + "': config groups cannot be selected on top of a resolved config; " +
                        "override its keys instead (e.g. training.total_steps=100)");
    }
    apply_key_word(raw, word);
  }
  return finish(std::move(raw), true);
}

}  // namespace ttt

#include "config/fields.h"

#include "config/schema.h"
#include "util/strings.h"

namespace ttt {
std::vector<std::string> used_field_lines(const Config& config, const std::string& section) {
  const RawConfig raw = raw_from_config(config);
  std::vector<std::string> out;
  for (const FieldSpec& spec : config_fields()) {
    const std::string key = spec.key;
    if (spec.use != FieldUse::kUsed || !starts_with(key, section + ".")) continue;
    const auto value = raw.find(key);
    if (value != raw.end()) out.push_back(key + ": " + render_yaml_value(value->second));
  }
  return out;
}

std::string unused_fields_markdown() {
  std::string table =
      "| field | here | in the reference, or why |\n"
      "|---|---|---|\n";
  for (const FieldSpec& spec : config_fields()) {
    if (spec.use == FieldUse::kUsed) continue;
    table += std::string("| `") + spec.key + "` | " +
             (spec.use == FieldUse::kParity ? "accepted, selects nothing" : "only the default") + " | " + spec.note +
             " |\n";
  }
  return table;
}

}  // namespace ttt

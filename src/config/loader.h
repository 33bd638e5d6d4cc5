// Builds a Config the way Hydra builds the reference's: configs/config.yaml's defaults list, then
// `+group=option` / `group=option` selections (experiment, deploy, model, training, backend), then
// dotted overrides (`training.seq_length=32768`, lists `training.spec_inner=[a,b]`), then
// `${a.b}` interpolations; finally the typed conversion and the consistency checks.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace ttt {

struct LoadOptions {
  std::string config_dir;  // root of the YAML tree (configs/); empty: find_config_dir()
  bool validate = true;    // run validate_config() after loading
};

// The configuration tree when none is given: the directory set by set_config_dir() (the CLI's
// --config-dir), else $TTT_CONFIG_DIR, else share/ttt/configs beside an installed binary
// (<prefix>/bin/ttt -> <prefix>/share/ttt/configs), else the configs/ of the source tree this
// build came from, if it still exists. Throws ConfigError naming every place it looked.
std::string find_config_dir();
void set_config_dir(const std::string& dir);

// `overrides` are the command-line words after the subcommand's own options, in order.
// Throws ConfigError with one line naming the problem.
Config load_config(const std::vector<std::string>& overrides, const LoadOptions& options = {});

// The fully resolved configuration as YAML (what is written next to every run's outputs);
// load_config on a file holding it gives back the same Config.
std::string to_yaml(const Config& config);

// Loads a resolved-config YAML file written by to_yaml (e.g. from a checkpoint or run directory),
// then applies `overrides` on top of it.
Config load_resolved_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The same from the file's text; `path` names it in errors.
Config parse_resolved_config(const std::string& text, const std::string& path,
                             const std::vector<std::string>& overrides = {});

}  // namespace ttt

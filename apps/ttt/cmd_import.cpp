// `ttt import`: an official checkpoint's weights (tools/import_orbax.py's safetensors file of the
// official leaves) as a parameters-only checkpoint of the configured run, ready for `ttt eval`,
// `ttt generate` and training with training.load_part=params.
#include <iostream>

#include "commands.h"
#include "config/loader.h"
#include "train/official_checkpoint.h"

namespace ttt::cli {

Run add_import_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "import",
      "Import official-layout weights (tools/import_orbax.py's output) as a checkpoint of the configured run");
  auto weights = std::make_shared<std::string>();
  auto config_file = std::make_shared<std::string>();
  auto step = std::make_shared<int64_t>(0);
  auto overrides = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--weights", *weights, "The official weights file (safetensors, official leaf names)")->required();
  cmd->add_option("--config", *config_file,
                  "A resolved configuration file (ttt info's output) instead of the configuration tree; the "
                  "overrides apply on top");
  cmd->add_option("--step", *step, "The step number of the checkpoint written (default 0)");
  add_overrides_option(*cmd, *overrides);
  return [weights, config_file, step, overrides]() {
    const Config config =
        config_file->empty() ? load_config(*overrides) : load_resolved_config(*config_file, *overrides);
    const std::string step_dir = import_official_weights(config, *weights, *step);
    std::cout << "imported " << *weights << " as " << step_dir << "\n";
    return 0;
  };
}

}  // namespace ttt::cli

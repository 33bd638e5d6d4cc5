// `ttt export`: a checkpoint's weights in the official layout (a safetensors file of the official
// pytree's leaves), which tools/export_orbax.py writes as an orbax checkpoint the official code loads.
#include <iostream>

#include "commands.h"
#include "train/checkpoint.h"
#include "train/official_checkpoint.h"

namespace ttt::cli {

Run add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Write a checkpoint's weights in the official layout (safetensors)");
  auto checkpoint = std::make_shared<std::string>();
  auto step = std::make_shared<int64_t>(-1);
  auto out = std::make_shared<std::string>();
  cmd->add_option("--checkpoint", *checkpoint, "A checkpoint step directory or a run's checkpoint directory")
      ->required();
  cmd->add_option("--step", *step, "With a run's checkpoint directory: the step (default: the latest complete one)");
  cmd->add_option("--out", *out, "The official weights file to write")->required();
  return [checkpoint, step, out]() {
    const std::string step_dir =
        find_checkpoint(*checkpoint, *step >= 0 ? std::optional<int64_t>(*step) : std::nullopt);
    export_official_weights(step_dir, *out);
    std::cout << "exported " << step_dir << " to " << *out << "\n";
    return 0;
  };
}

}  // namespace ttt::cli

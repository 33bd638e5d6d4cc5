// `ttt eval`: evaluates a checkpoint on the eval split (test-time training on for meta models)
// and writes eval.json, eval_nll_by_position.csv and loss_by_position.svg into the run directory.
#include <filesystem>

#include "commands.h"
#include "config/loader.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace ttt::cli {

Run add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a checkpoint: mean loss and loss by token position on the eval split");
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto checkpoint = std::make_shared<std::string>();
  auto step = std::make_shared<int64_t>(-1);
  cmd->add_option("--checkpoint", *checkpoint,
                  "A checkpoint step directory or a run's checkpoint directory (latest step); its config is used, "
                  "with the overrides on top. Without it: the latest checkpoint of the configured run");
  cmd->add_option("--step", *step, "With --checkpoint naming a run's checkpoint directory: the step to evaluate");
  add_overrides_option(*cmd, *overrides);
  return [overrides, checkpoint, step]() {
    Config config;
    if (!checkpoint->empty()) {
      const std::string step_dir =
          find_checkpoint(*checkpoint, *step >= 0 ? std::optional<int64_t>(*step) : std::nullopt);
      config = load_checkpoint_config(step_dir, *overrides);
      const std::filesystem::path p(step_dir);
      config.checkpoint.checkpoint_dir = p.parent_path().string();
      config.training.resume_step = std::stoll(p.filename().string());
    } else {
      config = load_config(*overrides);
    }
    config.training.eval_mode = true;
    Trainer(config).train();
    return 0;
  };
}

}  // namespace ttt::cli

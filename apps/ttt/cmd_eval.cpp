// `ttt eval`: evaluates a checkpoint on the eval split (test-time training on for meta models)
// and writes eval.json, eval_nll_by_position.csv and loss_by_position.svg into the run directory.
#include "commands.h"
#include "config/loader.h"
#include "train/checkpoint.h"
#include "train/evaluator.h"

namespace ttt::cli {

Run add_eval_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("eval", "Evaluate a checkpoint: mean loss and loss by token position on the eval split");
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto checkpoint = std::make_shared<std::string>();
  auto step = std::make_shared<int64_t>(-1);
  cmd->add_option("--checkpoint", *checkpoint,
                  "A checkpoint step directory or a run's checkpoint directory (latest step); its config is used, "
                  "with the overrides on top. Without it: the latest checkpoint of the configured run");
  cmd->add_option("--step", *step, "The step to evaluate (default: the latest complete checkpoint)");
  add_overrides_option(*cmd, *overrides);
  return [overrides, checkpoint, step]() {
    Config config;
    std::string step_dir;
    if (!checkpoint->empty()) {
      step_dir = find_checkpoint(*checkpoint, *step >= 0 ? std::optional<int64_t>(*step) : std::nullopt);
      config = load_checkpoint_config(step_dir, *overrides);
    } else {
      config = load_config(*overrides);
      if (*step >= 0) config.training.resume_step = *step;
      step_dir = checkpoint_to_evaluate(config);
    }
    config.training.eval_mode = true;
    evaluate_checkpoint(config, step_dir);
    return 0;
  };
}

}  // namespace ttt::cli

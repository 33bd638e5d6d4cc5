// `ttt train`: trains the configured experiment (meta-learning for E2E, plain next-token training
// for the FA/SWA baselines), then evaluates it on the val split.
#include "commands.h"
#include "config/loader.h"
#include "train/evaluator.h"
#include "train/trainer.h"

namespace ttt::cli {

Run add_train_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("train", "Train an experiment, e.g. ttt train +experiment=tiny/pretrain/pretrain-tiny-e2e");
  auto overrides = std::make_shared<std::vector<std::string>>();
  add_overrides_option(*cmd, *overrides);
  return [overrides]() {
    const Config config = load_config(*overrides);
    // The reference's training.eval_mode: evaluate the run's checkpoint instead of training.
    if (config.training.eval_mode)
      evaluate_checkpoint(config, checkpoint_to_evaluate(config));
    else
      Trainer(config).train();
    return 0;
  };
}

}  // namespace ttt::cli

// `ttt train`: trains the configured experiment (meta-learning for E2E, plain next-token training
// for the FA/SWA baselines), then evaluates it on the val split.
#include "commands.h"
#include "config/loader.h"
#include "train/trainer.h"

namespace ttt::cli {

Run add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train an experiment, e.g. ttt train +experiment=tiny/pretrain/pretrain-tiny-e2e");
  auto overrides = std::make_shared<std::vector<std::string>>();
  add_overrides_option(*cmd, *overrides);
  return [overrides]() {
    Trainer trainer(load_config(*overrides));
    trainer.train();
    return 0;
  };
}

}  // namespace ttt::cli

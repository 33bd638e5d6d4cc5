// `ttt train`: trains the configured experiment (meta-learning for E2E, plain next-token training
// for the FA/SWA baselines), then evaluates it on the val split. With hydra.mode=MULTIRUN
// (+deploy=submitit) it writes and submits the Slurm job that does so instead.
#include <iostream>

#include "commands.h"
#include "config/loader.h"
#include "dist/slurm_job.h"
#include "train/evaluator.h"
#include "train/trainer.h"

namespace ttt::cli {

Run add_train_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("train", "Train an experiment, e.g. ttt train +experiment=tiny/pretrain/pretrain-tiny-e2e");
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto dry_run = std::make_shared<bool>(false);
  cmd->add_flag("--dry-run", *dry_run,
                "With +deploy=submitit (hydra.mode=MULTIRUN): print the sbatch script instead of submitting it");
  add_overrides_option(*cmd, *overrides);
  return [overrides, dry_run]() {
    const Config config = load_config(*overrides);
    if (config.hydra.mode == HydraMode::kMultirun) return launch_slurm_job(config, *overrides, *dry_run);
    if (*dry_run) throw ConfigError("--dry-run prints a Slurm job: it needs hydra.mode=MULTIRUN (+deploy=submitit)");
    // The reference's training.eval_mode: evaluate the run's checkpoint instead of training.
    if (config.training.eval_mode) {
      evaluate_checkpoint(config, checkpoint_to_evaluate(config));
      return 0;
    }
    Trainer trainer(config);
    trainer.train();
    if (trainer.stopped_by_signal()) {
      std::cerr << "training stopped by SIGUSR1 after saving a checkpoint; the same command resumes it" << std::endl;
      return kExitRequeue;
    }
    return 0;
  };
}

}  // namespace ttt::cli

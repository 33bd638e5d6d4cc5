// The official multi-node launch, `ttt train +deploy=submitit hydra.launcher.nodes=4 ...`: with
// hydra.mode=MULTIRUN, training is not run here but written as an sbatch script (from
// hydra.launcher.*) that runs the same command under srun on every node, and submitted to Slurm.
// Each srun task is one rank (dist/launch.h reads SLURM_PROCID and friends); one process drives
// one device, so a GPU job has gpus_per_node tasks per node (a CPU job tasks_per_node, and asks
// for no GPU).
//
// Time limits, as submitit handles them: Slurm sends SIGUSR1 signal_delay_s before the limit, the
// run saves a checkpoint and exits with kExitRequeue, and the script requeues the job (at most
// max_num_timeout times); the requeued job resumes from that checkpoint.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"

namespace ttt {

// The exit status of a run stopped by SIGUSR1 after saving its checkpoint (EX_TEMPFAIL: "try
// again later").
inline constexpr int kExitRequeue = 75;

struct SlurmJobPaths {
  std::filesystem::path binary;      // the ttt executable the nodes run
  std::filesystem::path config_dir;  // passed as --config-dir
  std::filesystem::path work_dir;    // the job's working directory (relative paths in the config)
  std::filesystem::path log_dir;     // Slurm's output files, <job id>.out / .err
};

// Processes per node: gpus_per_node for a CUDA run, tasks_per_node otherwise. Throws ConfigError
// for a GPU job without gpus_per_node or with a tasks_per_node that is neither 1 nor that.
int64_t slurm_processes_per_node(const Config& config);

// The sbatch script for `config`, whose command-line words were `words`; the job runs
// `ttt train <words> hydra.mode=RUN`. Throws ConfigError for a launcher setting that is missing
// (partition, nodes) or cannot be written into the script, and for a world size the batches do
// not divide.
std::string sbatch_script(const Config& config, const std::vector<std::string>& words, const SlurmJobPaths& paths);

// The paths of this process: /proc/self/exe, the configuration tree in use, the current directory,
// and <run directory>/slurm.
SlurmJobPaths current_slurm_job_paths(const Config& config);

// Where launch_slurm_job writes the script: <log_dir>/submit.sbatch.
std::filesystem::path script_path(const SlurmJobPaths& paths);

// Runs `sbatch <script>` and returns the job id it prints. Throws std::runtime_error with sbatch's
// own message when it is missing or refuses the job.
std::string submit_sbatch(const std::filesystem::path& script);

// Writes the script to script_path() (atomically) and submits it, unless `dry_run`,
// which prints the script to stdout and writes nothing. Returns 0.
int launch_slurm_job(const Config& config, const std::vector<std::string>& words, bool dry_run);

}  // namespace ttt

// The official multi-node launch, `ttt train +deploy=submitit ...`: the sbatch script it writes
// from hydra.launcher.*, and the job itself run end to end by stand-ins for sbatch, srun and
// scontrol that do what Slurm does on one node (run the batch script, start one task per rank
// with SLURM_PROCID and friends, record a requeue). The job trains the weights one process
// trains; SIGUSR1 before the time limit saves a checkpoint and requeues the job, and the requeued
// job ends bitwise where an uninterrupted one does.
#include <gtest/gtest.h>

#include <fstream>

#include "config/loader.h"
#include "dist/slurm_job.h"
#include "support/dist_runs.h"
#include "support/process_groups.h"

namespace fs = std::filesystem;
using namespace ttt;
using namespace ttt::testing;

namespace {

Config submitit_config(std::vector<std::string> words) {
  words.insert(words.begin(), {"+experiment=tiny/pretrain/pretrain-tiny-e2e", "+deploy=submitit"});
  return load_config(words);
}

SlurmJobPaths example_paths() { return {"/opt/ttt/bin/ttt", "/opt/ttt/configs", "/work", "/work/exp/slurm"}; }

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

// sbatch, srun and scontrol for one node. sbatch runs the script at once (in its --chdir, output
// to its --output) with the job's variables; srun starts SLURM_NTASKS tasks and records their
// pids; scontrol records its arguments.
void write_fake_slurm(const fs::path& bin) {
  fs::create_directories(bin);
  const std::map<std::string, std::string> scripts = {{"sbatch", R"SH(#!/bin/bash
script="$1"
value() { sed -n "s/^#SBATCH --$1=//p" "$script"; }
export SLURM_JOB_ID=${FAKE_SLURM_JOB_ID:-4242} SLURM_NNODES=$(value nodes) SLURM_JOB_NODELIST=localhost
export SLURM_NTASKS=$(( $(value nodes) * $(value ntasks-per-node) ))
out=$(value output); out=${out//%j/$SLURM_JOB_ID}
(cd "$(value chdir)" && bash "$script" >> "$out" 2>&1)
echo "Submitted batch job $SLURM_JOB_ID"
)SH"},
                                                      {"srun", R"SH(#!/bin/bash
while [[ "$1" == --* ]]; do shift; done
if [ -n "$FAKE_SRUN_EXIT" ]; then exit "$FAKE_SRUN_EXIT"; fi
pids=()
for ((i = 0; i < SLURM_NTASKS; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_STEP_NUM_TASKS=$SLURM_NTASKS "$@" &
  pids+=($!)
done
printf '%s\n' "${pids[@]}" > "$FAKE_SLURM_DIR/task_pids"
status=0
for p in "${pids[@]}"; do wait "$p"; s=$?; if (( s > status )); then status=$s; fi; done
exit $status
)SH"},
                                                      {"scontrol", R"SH(#!/bin/bash
echo "$@" >> "$FAKE_SLURM_DIR/scontrol.log"
)SH"}};
  for (const auto& [name, text] : scripts) {
    std::ofstream(bin / name) << text;
    fs::permissions(bin / name, fs::perms::owner_all);
  }
}

std::map<std::string, std::string> fake_slurm_env(const fs::path& dir) {
  return {{"PATH", (dir / "bin").string() + ":" + std::getenv("PATH")},
          {"FAKE_SLURM_DIR", dir.string()},
          {"MASTER_ADDR", "127.0.0.1"},
          {"MASTER_PORT", std::to_string(free_port())}};
}

// `ttt train` of run_args(...) as a submitit job of one node with `tasks` CPU processes.
std::vector<std::string> job_args(const fs::path& dir, const std::string& exp, int64_t steps, int tasks) {
  auto args = run_args(dir, exp, "e2e", steps);
  for (const std::string& word :
       {std::string("+deploy=submitit"), std::string("backend=cpu"), std::string("hydra.launcher.nodes=1"),
        "hydra.launcher.tasks_per_node=" + std::to_string(tasks), std::string("hydra.launcher.max_num_timeout=3")})
    args.push_back(word);
  return args;
}

fs::path slurm_dir(const fs::path& dir, const std::string& exp) { return dir / "exp" / "demo" / exp / "slurm"; }

}  // namespace

TEST(SlurmJob, TheScriptCarriesTheLauncherSettingsAndTheCommand) {
  const Config config =
      submitit_config({"hydra.launcher.nodes=2", "hydra.launcher.partition=gpu", "hydra.launcher.comment=an example",
                       "training.global_batch_size=64", "hydra.launcher.setup=[module load cuda]"});
  EXPECT_EQ(config.hydra.mode, HydraMode::kMultirun);
  EXPECT_EQ(slurm_processes_per_node(config), 8);  // backend=gpu: one process per GPU
  const std::string script = sbatch_script(config, {"+deploy=submitit", "a b", "it's"}, example_paths());
  for (const char* line :
       {"#SBATCH --job-name=ttt_e2e_multi_node", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=8",
        "#SBATCH --gpus-per-node=8", "#SBATCH --cpus-per-task=12", "#SBATCH --time=3840", "#SBATCH --partition=gpu",
        "#SBATCH --comment=\"an example\"", "#SBATCH --output=/work/exp/slurm/%j.out", "#SBATCH --signal=USR1@300",
        "#SBATCH --requeue", "#SBATCH --chdir=/work", "module load cuda",
        "srun --kill-on-bad-exit=1 /opt/ttt/bin/ttt --config-dir /opt/ttt/configs train +deploy=submitit 'a b' "
        "'it'\\''s' hydra.mode=RUN"})
    EXPECT_TRUE(has_line(script, line)) << line << " not in\n" << script;
  EXPECT_EQ(script.find("--qos"), std::string::npos);  // unset settings are left to Slurm

  // A CPU job runs tasks_per_node processes and asks for no GPU.
  const Config cpu = submitit_config({"backend=cpu", "hydra.launcher.nodes=1", "hydra.launcher.tasks_per_node=4"});
  EXPECT_EQ(slurm_processes_per_node(cpu), 4);
  const std::string cpu_script = sbatch_script(cpu, {}, example_paths());
  EXPECT_TRUE(has_line(cpu_script, "#SBATCH --ntasks-per-node=4")) << cpu_script;
  EXPECT_EQ(cpu_script.find("--gpus-per-node"), std::string::npos) << cpu_script;
}

TEST(SlurmJob, SettingsThatCannotMakeAJobAreRefusedNamingTheKey) {
  const auto expect_refusal = [](const std::vector<std::string>& words, const std::string& key) {
    expect_one_line_error<ConfigError>([&] { sbatch_script(submitit_config(words), {}, example_paths()); }, {key});
  };
  expect_refusal({}, "hydra.launcher.nodes");
  expect_refusal({"hydra.launcher.nodes=1", "hydra.launcher.gpus_per_node=null"}, "gpus_per_node");
  expect_refusal({"hydra.launcher.nodes=1", "hydra.launcher.tasks_per_node=2"}, "tasks_per_node");
  // 3 nodes x 8 GPUs cannot share a global batch of 8.
  expect_refusal({"hydra.launcher.nodes=3"}, "global_batch_size");
  expect_refusal({"hydra.launcher.nodes=1", "hydra.launcher.comment='a \"quoted\" word'"}, "hydra.launcher.comment");
  // Hydra's own settings: read from files, refused on the command line, except the launcher's.
  expect_one_line_error<ConfigError>([] { submitit_config({"hydra.job.name=x"}); }, {"no effect here"});
  expect_one_line_error<ConfigError>([] { submitit_config({"hydra.launcher.partitions=x"}); },
                                     {"hydra.launcher.partition"});
}

TEST(SlurmJob, DryRunPrintsTheScriptAndWritesNothing) {
  auto dir = fresh_temp_dir("slurm_dry");
  auto args = job_args(dir, "dry", 2, 2);
  args.push_back("--dry-run");
  ASSERT_EQ(run(args, dir / "dry.log"), 0) << read_bytes(dir / "dry.log");
  EXPECT_TRUE(has_line(read_bytes(dir / "dry.log"), "#SBATCH --ntasks-per-node=2")) << read_bytes(dir / "dry.log");
  EXPECT_FALSE(fs::exists(dir / "exp")) << "a dry run wrote files";
  // Without sbatch on the PATH the script is written and the error says how to submit it.
  const pid_t pid =
      spawn(job_args(dir, "no_sbatch", 2, 2), dir / "no_sbatch.log", kTttBinary, {{"PATH", "/nonexistent"}});
  EXPECT_EQ(wait_exit(pid), 1);
  EXPECT_NE(read_bytes(dir / "no_sbatch.log").find("cannot run sbatch"), std::string::npos)
      << read_bytes(dir / "no_sbatch.log");
  EXPECT_TRUE(fs::exists(slurm_dir(dir, "no_sbatch") / "submit.sbatch"));
  fs::remove_all(dir);
}

TEST(SlurmJob, TheScriptRequeuesARunStoppedBeforeTheTimeLimitAtMostMaxNumTimeoutTimes) {
  auto dir = fresh_temp_dir("slurm_requeue");
  write_fake_slurm(dir / "bin");
  auto env = fake_slurm_env(dir);
  env["FAKE_SRUN_EXIT"] = std::to_string(kExitRequeue);  // the run saved its checkpoint and asks to go on
  ASSERT_EQ(wait_exit(spawn(job_args(dir, "requeue", 2, 2), dir / "submit.log", kTttBinary, env)), 0)
      << read_bytes(dir / "submit.log");
  EXPECT_EQ(read_bytes(dir / "scontrol.log"), "requeue 4242\n");
  const fs::path script = slurm_dir(dir, "requeue") / "submit.sbatch";
  // The last allowed restart: no requeue, and the job ends with the run's status.
  env["SLURM_RESTART_COUNT"] = "3";
  EXPECT_EQ(wait_exit(spawn({script.string()}, dir / "last.log", "bash", env)), kExitRequeue);
  EXPECT_EQ(read_bytes(dir / "scontrol.log"), "requeue 4242\n");
  EXPECT_NE(read_bytes(dir / "last.log").find("max_num_timeout (3) requeues used"), std::string::npos)
      << read_bytes(dir / "last.log");
  fs::remove_all(dir);
}

TEST(SlurmJob, ASubmittedJobTrainsTheWeightsOfOneProcessAndResumesBitwiseAfterATimeLimit) {
  REQUIRE_CPU_PROCESS_GROUPS();
  auto dir = fresh_temp_dir("slurm_job");
  write_fake_slurm(dir / "bin");
  const int64_t steps = 16;
  ASSERT_EQ(run(run_args(dir, "one", "e2e", steps), dir / "one.log"), 0) << read_bytes(dir / "one.log");

  // An uninterrupted job of two tasks.
  ASSERT_EQ(wait_exit(spawn(job_args(dir, "job", steps, 2), dir / "job.log", kTttBinary, fake_slurm_env(dir))), 0)
      << read_bytes(dir / "job.log");
  const std::string output = read_bytes(slurm_dir(dir, "job") / "4242.out");
  EXPECT_NE(read_bytes(dir / "job.log").find("submitted Slurm job 4242"), std::string::npos);
  EXPECT_NE(output.find("rank 0 of 2 (slurm"), std::string::npos) << output;
  EXPECT_LT(max_weight_difference(final_checkpoint(dir, "one", steps), final_checkpoint(dir, "job", steps)),
            kWeightTolerance);

  // The same job, signalled as Slurm does signal_delay_s before the time limit (SIGUSR1, here to
  // one rank only: the ranks agree to stop after the same step).
  auto env = fake_slurm_env(dir);
  env["FAKE_SLURM_JOB_ID"] = "4243";
  const pid_t submit = spawn(job_args(dir, "timed", steps, 2), dir / "timed.log", kTttBinary, env);
  const fs::path checkpoints = dir / "ckpt" / "demo" / "timed";
  ASSERT_TRUE(wait_for_checkpoint(checkpoints, 1)) << read_bytes(slurm_dir(dir, "timed") / "4243.out");
  std::ifstream pids(dir / "task_pids");
  pid_t rank0 = 0, rank1 = 0;
  pids >> rank0 >> rank1;
  ASSERT_GT(rank1, 0);
  kill(rank1, SIGUSR1);
  ASSERT_EQ(wait_exit_within(submit, std::chrono::seconds(120)), 0) << read_bytes(dir / "timed.log");
  const std::string timed_output = read_bytes(slurm_dir(dir, "timed") / "4243.out");
  EXPECT_EQ(read_bytes(dir / "scontrol.log"), "requeue 4243\n") << timed_output;
  EXPECT_NE(timed_output.find("stopped by SIGUSR1"), std::string::npos) << timed_output;
  const int64_t stopped_after = complete_checkpoint_steps(checkpoints.string()).back();
  ASSERT_LT(stopped_after, steps - 1) << "the run finished before the signal";

  // Slurm runs the requeued job's script again: it resumes and ends where the uninterrupted job did.
  env["SLURM_RESTART_COUNT"] = "1";
  env["SLURM_JOB_ID"] = "4243";
  env["SLURM_NTASKS"] = "2";
  env["MASTER_PORT"] = std::to_string(free_port());
  ASSERT_EQ(wait_exit(spawn({(slurm_dir(dir, "timed") / "submit.sbatch").string()}, dir / "requeued.log", "bash", env)),
            0)
      << read_bytes(dir / "requeued.log");
  EXPECT_NE(read_bytes(dir / "requeued.log").find("resuming at step " + std::to_string(stopped_after + 1)),
            std::string::npos)
      << read_bytes(dir / "requeued.log");
  for (const char* file : {"model.safetensors", "optimizer.safetensors"})
    EXPECT_TRUE(read_bytes(final_checkpoint(dir, "job", steps) / file) ==
                read_bytes(final_checkpoint(dir, "timed", steps) / file))
        << file << " differs after a stop at step " << stopped_after;
  fs::remove_all(dir);
}

#include "dist/slurm_job.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "config/loader.h"
#include "data/dataset.h"
#include "train/run_directory.h"
#include "util/file_io.h"
#include "util/strings.h"

extern char** environ;

namespace ttt {
namespace {

const LauncherConfig& launcher(const Config& config) { return config.hydra.launcher; }

int64_t require_nodes(const Config& config) {
  if (!launcher(config).nodes)
    throw ConfigError("hydra.launcher.nodes is not set; set it on the command line (hydra.launcher.nodes=4)");
  return *launcher(config).nodes;
}

bool is_cuda(const Config& config) { return starts_with(config.backend.device, "cuda"); }

// A word for bash: single-quoted unless it is made of characters that need none.
std::string shell_quote(const std::string& word) {
  static const std::regex plain("[A-Za-z0-9_./=+:,@%-]+");
  if (!word.empty() && std::regex_match(word, plain)) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// One `#SBATCH --name=value` line. sbatch reads these lines itself (no shell), so a value may not
// span lines; one with blanks is double-quoted, which sbatch accepts.
std::string directive(const std::string& name, const std::string& value, const std::string& key) {
  if (value.find_first_of("\r\n\"") != std::string::npos)
    throw ConfigError(key + ": a value with a line break or a double quote cannot be written into an sbatch script");
  const bool blank = value.find_first_of(" \t") != std::string::npos;
  return "#SBATCH --" + name + "=" + (blank ? "\"" + value + "\"" : value) + "\n";
}

std::string job_name(const Config& config) {
  return launcher(config).name.value_or(require(config.training.exp_name, "training.exp_name"));
}

}  // namespace

std::filesystem::path script_path(const SlurmJobPaths& paths) { return paths.log_dir / "submit.sbatch"; }

int64_t slurm_processes_per_node(const Config& config) {
  const LauncherConfig& l = launcher(config);
  if (!is_cuda(config)) return l.tasks_per_node;
  if (!l.gpus_per_node)
    throw ConfigError("hydra.launcher.gpus_per_node is not set: a GPU job runs one process per GPU (backend.device=" +
                      config.backend.device + ")");
  if (l.tasks_per_node != 1 && l.tasks_per_node != *l.gpus_per_node)
    throw ConfigError("hydra.launcher.tasks_per_node (" + std::to_string(l.tasks_per_node) +
                      ") must be 1 or hydra.launcher.gpus_per_node (" + std::to_string(*l.gpus_per_node) +
                      "): each process drives one GPU");
  return *l.gpus_per_node;
}

std::string sbatch_script(const Config& config, const std::vector<std::string>& words, const SlurmJobPaths& paths) {
  const LauncherConfig& l = launcher(config);
  const int64_t nodes = require_nodes(config);
  const int64_t per_node = slurm_processes_per_node(config);
  check_batches_divide(config.training, nodes * per_node);
  const std::string log = paths.log_dir.string();

  std::ostringstream s;
  s << "#!/bin/bash\n";
  s << "# Written by `ttt train` (hydra.mode=MULTIRUN) from hydra.launcher.*: " << nodes << " node(s) x " << per_node
    << " process(es), one per " << (is_cuda(config) ? "GPU" : "task") << ".\n";
  s << "# Submit it again with `sbatch " << shell_quote(script_path(paths).string())
    << "`: the run resumes from its latest checkpoint.\n";
  s << directive("job-name", job_name(config), "hydra.launcher.name");
  s << directive("nodes", std::to_string(nodes), "hydra.launcher.nodes");
  s << directive("ntasks-per-node", std::to_string(per_node), "hydra.launcher.tasks_per_node");
  // The optional settings: each becomes the sbatch option of its name when set.
  const auto number = [](const std::optional<int64_t>& n, const char* unit) -> std::optional<std::string> {
    return n ? std::optional<std::string>(std::to_string(*n) + unit) : std::nullopt;
  };
  const struct {
    const char* option;
    const char* field;
    std::optional<std::string> value;
  } optional_settings[] = {
      {"gpus-per-node", "gpus_per_node", is_cuda(config) ? number(l.gpus_per_node, "") : std::nullopt},
      {"cpus-per-task", "cpus_per_task", number(l.cpus_per_task, "")},
      {"mem", "mem_gb", number(l.mem_gb, "G")},
      {"partition", "partition", l.partition},
      {"qos", "qos", l.qos},
      {"account", "account", l.account},
      {"comment", "comment", l.comment},
      {"constraint", "constraint", l.constraint},
      {"exclude", "exclude", l.exclude},
      {"gres", "gres", l.gres},
      {"cpus-per-gpu", "cpus_per_gpu", number(l.cpus_per_gpu, "")},
      {"gpus-per-task", "gpus_per_task", number(l.gpus_per_task, "")},
      {"mem-per-gpu", "mem_per_gpu", l.mem_per_gpu},
      {"mem-per-cpu", "mem_per_cpu", l.mem_per_cpu},
  };
  for (const auto& setting : optional_settings)
    if (setting.value) s << directive(setting.option, *setting.value, std::string("hydra.launcher.") + setting.field);
  s << directive("time", std::to_string(l.timeout_min), "hydra.launcher.timeout_min");
  s << directive("output", log + "/%j.out", "the run directory");
  if (!l.stderr_to_stdout) s << directive("error", log + "/%j.err", "the run directory");
  s << "#SBATCH --open-mode=append\n";
  s << directive("signal", "USR1@" + std::to_string(l.signal_delay_s), "hydra.launcher.signal_delay_s");
  s << "#SBATCH --requeue\n";
  s << directive("chdir", paths.work_dir.string(), "the working directory");
  s << "\n";
  for (const std::string& line : l.setup) s << line << "\n";
  if (!l.setup.empty()) s << "\n";

  s << "srun --kill-on-bad-exit=1";
  for (const std::string& arg : l.srun_args) s << " " << shell_quote(arg);
  s << " " << shell_quote(paths.binary.string()) << " --config-dir " << shell_quote(paths.config_dir.string())
    << " train";
  for (const std::string& word : words) s << " " << shell_quote(word);
  s << " hydra.mode=RUN\n";
  s << "status=$?\n";
  s << "if [ \"$status\" -eq " << kExitRequeue << " ]; then\n";
  s << "  if [ \"${SLURM_RESTART_COUNT:-0}\" -lt " << l.max_num_timeout << " ]; then\n";
  s << "    echo \"ttt: checkpoint saved before the time limit; requeueing job $SLURM_JOB_ID\"\n";
  s << "    scontrol requeue \"$SLURM_JOB_ID\" && exit 0\n";
  s << "  else\n";
  s << "    echo \"ttt: checkpoint saved before the time limit; hydra.launcher.max_num_timeout (" << l.max_num_timeout
    << ") requeues used, submit this script again to continue\"\n";
  s << "  fi\n";
  s << "fi\n";
  s << "exit \"$status\"\n";
  return s.str();
}

SlurmJobPaths current_slurm_job_paths(const Config& config) {
  SlurmJobPaths paths;
  std::error_code error;
  paths.binary = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) throw std::runtime_error("cannot find the path of the ttt binary (/proc/self/exe): " + error.message());
  paths.config_dir = std::filesystem::absolute(find_config_dir());
  paths.work_dir = std::filesystem::current_path();
  paths.log_dir = std::filesystem::absolute(run_directory(config) / "slurm").lexically_normal();
  return paths;
}

std::string submit_sbatch(const std::filesystem::path& script) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) throw std::runtime_error("cannot create a pipe to run sbatch");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  const std::string path = script.string();
  char* argv[] = {const_cast<char*>("sbatch"), const_cast<char*>(path.c_str()), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "sbatch", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  std::string output;
  if (spawned == 0) {
    char buffer[4096];
    for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0;) output.append(buffer, n);
  }
  close(pipe_fds[0]);
  if (spawned != 0)
    throw std::runtime_error("cannot run sbatch (" + std::string(std::strerror(spawned)) +
                             "); submit the script from a Slurm login node: sbatch " + path);
  int status = 0;
  waitpid(pid, &status, 0);
  std::smatch match;
  const std::string trimmed = trim(output);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("sbatch refused " + path + ": " + single_line(trimmed));
  if (!std::regex_search(trimmed, match, std::regex("Submitted batch job ([0-9]+)")))
    throw std::runtime_error("sbatch printed no job id for " + path + ": " + single_line(trimmed));
  return match[1];
}

int launch_slurm_job(const Config& config, const std::vector<std::string>& words, bool dry_run) {
  const SlurmJobPaths paths = current_slurm_job_paths(config);
  const std::string script = sbatch_script(config, words, paths);
  if (dry_run) {
    std::cout << script << std::flush;
    return 0;
  }
  std::filesystem::create_directories(paths.log_dir);
  const std::filesystem::path file = script_path(paths);
  write_file_atomically(file.string(), script);
  const std::string job = submit_sbatch(file);
  std::cout << "submitted Slurm job " << job << " (" << file.string() << "); its output goes to "
            << (paths.log_dir / (job + ".out")).string() << std::endl;
  return 0;
}

}  // namespace ttt

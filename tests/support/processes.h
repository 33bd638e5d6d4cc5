// Running the `ttt` binary from tests: spawn with extra environment variables and the output
// appended to a log, wait (with a deadline), read files whole.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace ttt::testing {

inline const std::string kTttBinary = TTT_BINARY_DIR "/ttt";

// Runs `program` with `args` and `env` added to this process's environment; stdout and stderr are
// appended to `log`.
inline pid_t spawn(const std::vector<std::string>& args, const std::filesystem::path& log,
                   const std::string& program = kTttBinary, const std::map<std::string, std::string>& env = {}) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "a", stdout);
    (void)f;
    dup2(fileno(stdout), STDERR_FILENO);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(program.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(program.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// `ttt train` of a tiny experiment (tiny/pretrain/pretrain-tiny-<variant>: e2e, swa, fa) at a
// size that trains in a fraction of a second per step: dummy data, T = 64, D = 32.
inline std::vector<std::string> small_train_args(const std::string& variant, const std::string& exp_name) {
  return {"train",
          "+experiment=tiny/pretrain/pretrain-tiny-" + variant,
          "training.dummy_dataset=true",
          "training.exp_name=" + exp_name,
          "training.seq_length=64",
          "model.mini_batch_size=16",
          "model.sliding_window_size=32",
          "model.hidden_size=32",
          "model.num_attention_heads=2",
          "model.intermediate_size=48",
          "backend.num_threads=1"};
}

inline int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

inline int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return exit_code(status);
}

// The exit code, or -1 when the process still runs after `limit` (it is then killed and reaped).
inline int wait_exit_within(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return exit_code(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

inline int run(const std::vector<std::string>& args, const std::filesystem::path& log,
               const std::string& program = kTttBinary) {
  return wait_exit(spawn(args, log, program));
}

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace ttt::testing

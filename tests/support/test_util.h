// Helpers shared by the tests: scratch directories, processes, and the one-line errors that bad
// input must produce.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttt::testing {

// A fresh, empty directory under the system's temporary directory, unique to this process.
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("ttt_test_" + std::to_string(getpid()) + "_" + name);
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

inline std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

// The pid of a process that has exited.
inline pid_t exited_pid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

// Runs `fn`, expecting a one-line `Error` (a std::runtime_error unless given) whose message holds
// every one of `parts`.
template <typename Error = std::runtime_error, typename Fn>
void expect_one_line_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    for (const auto& part : parts) EXPECT_NE(what.find(part), std::string::npos) << what;
    return;
  }
  ADD_FAILURE() << "expected an error mentioning " << parts.front();
}

}  // namespace ttt::testing

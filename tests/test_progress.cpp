// Per-step reporting (train/progress): metrics.jsonl keeps each step once across resumes, and
// rewriting it never loses history.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/test_util.h"
#include "train/progress.h"
#include "util/file_io.h"

using namespace ttt;
namespace fs = std::filesystem;

namespace {

std::vector<int64_t> logged_steps(const fs::path& file) {
  std::vector<int64_t> steps;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) steps.push_back(nlohmann::json::parse(line).at("step"));
  return steps;
}

ino_t inode_of(const fs::path& file) {
  struct stat s {};
  stat(file.c_str(), &s);
  return s.st_ino;
}

}  // namespace

TEST(Progress, AResumedRunRewritesMetricsAtomicallyAndKeepsEarlierSteps) {
  // bad-input.md #12: a run killed right after resuming once emptied metrics.jsonl (it was
  // truncated, then rewritten). Now the kept lines are written beside and renamed over it.
  const auto dir = ttt::testing::fresh_temp_dir("progress");
  const auto metrics = dir / "metrics.jsonl";
  {
    std::ofstream out(metrics);
    for (int step = 0; step < 10; ++step) out << nlohmann::json{{"step", step}, {"loss", 1.0}}.dump() << "\n";
    out << "{\"step\": 10, \"lo";  // cut by a kill mid-line
  }
  const ino_t before = inode_of(metrics);
  { ProgressReporter resumed(dir, /*first_step=*/6, /*total_steps=*/20); }
  EXPECT_EQ(logged_steps(metrics), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_NE(inode_of(metrics), before) << "the history was rewritten in place, not replaced";
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "metrics.jsonl") << e.path();
  // Nothing to drop: the file is left as it is (appended to, never rewritten).
  const ino_t kept = inode_of(metrics);
  { ProgressReporter continued(dir, /*first_step=*/6, /*total_steps=*/20); }
  EXPECT_EQ(inode_of(metrics), kept);
  EXPECT_EQ(logged_steps(metrics).size(), 6u);
  fs::remove_all(dir);
}

// Reading the launch from the environment: torchrun's variables, Slurm's, the official config's
// backend section, and one-line errors for values that do not parse.
#include <gtest/gtest.h>

#include <map>

#include "dist/launch.h"

using namespace ttt;

namespace {

GetEnv env_of(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

}  // namespace

TEST(Launch, NothingSetIsOneProcess) {
  const LaunchInfo info = detect_launch(BackendConfig{}, env_of({}));
  EXPECT_FALSE(info.distributed());
  EXPECT_EQ(info.launcher, "single");
}

TEST(Launch, Torchrun) {
  const LaunchInfo info = detect_launch(BackendConfig{}, env_of({{"RANK", "3"},
                                                                 {"WORLD_SIZE", "8"},
                                                                 {"LOCAL_RANK", "1"},
                                                                 {"MASTER_ADDR", "node7"},
                                                                 {"MASTER_PORT", "29411"},
                                                                 {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                                                 {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  EXPECT_EQ(info.launcher, "torchrun");
  EXPECT_EQ(info.rank, 3);
  EXPECT_EQ(info.world_size, 8);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.master_addr, "node7");
  EXPECT_EQ(info.master_port, 29411);
  EXPECT_TRUE(info.agent_store);
  EXPECT_EQ(info.restart_count, 2);
}

TEST(Launch, SlurmTakesTheFirstHostOfTheJobAndAPortOfTheJob) {
  const LaunchInfo info = detect_launch(BackendConfig{}, env_of({{"SLURM_PROCID", "5"},
                                                                 {"SLURM_NTASKS", "16"},
                                                                 {"SLURM_LOCALID", "5"},
                                                                 {"SLURM_JOB_NODELIST", "gpu[012-015,020],login1"},
                                                                 {"SLURM_JOB_ID", "123456"}}));
  EXPECT_EQ(info.launcher, "slurm");
  EXPECT_EQ(info.rank, 5);
  EXPECT_EQ(info.world_size, 16);
  EXPECT_EQ(info.local_rank, 5);
  EXPECT_EQ(info.master_addr, "gpu012");
  EXPECT_EQ(info.master_port, 20000 + 123456 % 20000);
  // MASTER_ADDR / MASTER_PORT win; the step's task count wins over the job's.
  const LaunchInfo set = detect_launch(BackendConfig{}, env_of({{"SLURM_PROCID", "0"},
                                                                {"SLURM_NTASKS", "16"},
                                                                {"SLURM_STEP_NUM_TASKS", "4"},
                                                                {"SLURM_JOB_NODELIST", "a1"},
                                                                {"MASTER_ADDR", "10.0.0.9"},
                                                                {"MASTER_PORT", "4000"}}));
  EXPECT_EQ(set.world_size, 4);
  EXPECT_EQ(set.master_addr, "10.0.0.9");
  EXPECT_EQ(set.master_port, 4000);
}

TEST(Launch, FirstSlurmHost) {
  EXPECT_EQ(first_slurm_host("node1"), "node1");
  EXPECT_EQ(first_slurm_host("node1,node2"), "node1");
  EXPECT_EQ(first_slurm_host("rack[3-4]-gpu[07-09]"), "rack3-gpu[07-09]");
  EXPECT_EQ(first_slurm_host("gpu[003-006,010],cpu1"), "gpu003");
  EXPECT_THROW(first_slurm_host("gpu[003"), ConfigError);
}

TEST(Launch, TheOfficialConfigsBackendSection) {
  BackendConfig b;
  b.distributed = true;
  b.num_processes = 4;
  b.process_id = 2;
  b.coordinator_address = "10.1.2.3:1234";
  const LaunchInfo info = detect_launch(b, env_of({}));
  EXPECT_EQ(info.launcher, "config");
  EXPECT_EQ(info.rank, 2);
  EXPECT_EQ(info.world_size, 4);
  EXPECT_EQ(info.master_addr, "10.1.2.3");
  EXPECT_EQ(info.master_port, 1234);
  // distributed=true with one process (the interactive deploy) is one process.
  b.num_processes = 1;
  EXPECT_FALSE(detect_launch(b, env_of({})).distributed());
}

TEST(Launch, BadValuesAreOneLineErrorsNamingTheVariable) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> cases = {
      {{{"RANK", "x"}, {"WORLD_SIZE", "2"}}, "RANK"},
      {{{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "outside the world"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "0"}}, "WORLD_SIZE"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT"},
      {{{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "two"}}, "SLURM_NTASKS"},
  };
  for (const auto& [vars, part] : cases) {
    try {
      detect_launch(BackendConfig{}, env_of(vars));
      ADD_FAILURE() << "accepted " << part;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  }
  BackendConfig b;
  b.distributed = true;
  b.num_processes = 2;
  b.process_id = 0;
  b.coordinator_address = "nohostport";
  EXPECT_THROW(detect_launch(b, env_of({})), ConfigError);
}

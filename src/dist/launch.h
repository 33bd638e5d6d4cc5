// Who this process is in a distributed run, read the way PyTorch users launch: torchrun (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), Slurm's srun (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID, master host from MASTER_ADDR or the first host of SLURM_JOB_NODELIST), or the
// official config's backend section (distributed=true with coordinator_address "host:port",
// num_processes and process_id, as jax.distributed.initialize takes them). Nothing set: one process.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "config/config.h"

namespace ttt {

struct LaunchInfo {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;  // index on this host: selects cuda:<local_rank>
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string launcher = "single";  // single | torchrun | slurm | config
  // torchrun's agent hosts the rendezvous store (TORCHELASTIC_USE_AGENT_STORE): no rank hosts it,
  // and keys are prefixed by the restart attempt (TORCHELASTIC_RESTART_COUNT).
  bool agent_store = false;
  int64_t restart_count = 0;

  bool distributed() const { return world_size > 1; }
};

using GetEnv = std::function<const char*(const char*)>;

// Reads the launch from `getenv` (the process environment by default) and `backend`. Throws
// ConfigError naming the variable for a value that does not parse or is out of range (a rank
// outside the world, a port outside 1..65535).
LaunchInfo detect_launch(const BackendConfig& backend, const GetEnv& getenv = nullptr);

// The first host of a Slurm node list: "gpu[003-006,010],cpu1" -> "gpu003".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace ttt

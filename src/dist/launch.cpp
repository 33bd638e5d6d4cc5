#include "dist/launch.h"

#include <cstdlib>
#include <limits>

namespace ttt {
namespace {

// `text` as an integer in [min, max]; ConfigError naming `what` (and quoting the text) otherwise.
int64_t parse_integer(const std::string& text, const std::string& what, int64_t min, int64_t max) {
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || n < min || n > max)
    throw ConfigError(what + "='" + text + "' is not an integer in [" + std::to_string(min) + ", " +
                      std::to_string(max) + "]");
  return n;
}

// An integer environment variable in [min, max].
int64_t env_integer(const GetEnv& getenv, const char* name, int64_t min, int64_t max) {
  const char* value = getenv(name);
  return parse_integer(value ? value : "", std::string("environment variable ") + name, min, max);
}

const char* first_set(const GetEnv& getenv, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (const char* v = getenv(name); v && *v) return v;
  return nullptr;
}

// "host:port" of backend.coordinator_address.
void parse_coordinator(const std::string& address, LaunchInfo& info) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw ConfigError("backend.coordinator_address='" + address + "' is not host:port");
  info.master_addr = address.substr(0, colon);
  info.master_port =
      static_cast<int>(parse_integer(address.substr(colon + 1), "the port of backend.coordinator_address", 1, 65535));
}

void check_rank(const LaunchInfo& info, const std::string& source) {
  if (info.rank >= info.world_size)
    throw ConfigError(source + ": rank " + std::to_string(info.rank) + " is outside the world of " +
                      std::to_string(info.world_size) + " process(es)");
}

constexpr int64_t kMaxWorld = 1 << 20;

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // Entries are separated by commas outside brackets; a bracket holds ranges of suffixes.
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == ',' && depth == 0) break;
    if (c == '[') ++depth;
    if (c == ']') --depth;
    first.push_back(c);
  }
  const auto open = first.find('[');
  if (open == std::string::npos) return first;
  const auto close = first.find(']', open);
  if (close == std::string::npos) throw ConfigError("Slurm node list '" + nodelist + "' has an unclosed '['");
  std::string range = first.substr(open + 1, close - open - 1);
  range = range.substr(0, range.find(','));
  range = range.substr(0, range.find('-'));
  return first.substr(0, open) + range + first.substr(close + 1);
}

LaunchInfo detect_launch(const BackendConfig& backend, const GetEnv& getenv_arg) {
  const GetEnv getenv = getenv_arg ? getenv_arg : GetEnv([](const char* n) { return std::getenv(n); });
  LaunchInfo info;
  const auto master_from_env = [&] {
    if (const char* addr = first_set(getenv, {"MASTER_ADDR"})) info.master_addr = addr;
    if (getenv("MASTER_PORT")) info.master_port = static_cast<int>(env_integer(getenv, "MASTER_PORT", 1, 65535));
  };
  if (getenv("RANK") && getenv("WORLD_SIZE")) {  // torchrun, or any launcher of the env:// convention
    info.launcher = "torchrun";
    info.world_size = env_integer(getenv, "WORLD_SIZE", 1, kMaxWorld);
    info.rank = env_integer(getenv, "RANK", 0, kMaxWorld);
    info.local_rank = getenv("LOCAL_RANK") ? env_integer(getenv, "LOCAL_RANK", 0, kMaxWorld) : 0;
    master_from_env();
    const char* agent = getenv("TORCHELASTIC_USE_AGENT_STORE");
    info.agent_store = agent && std::string(agent) == "True";
    if (getenv("TORCHELASTIC_RESTART_COUNT"))
      info.restart_count = env_integer(getenv, "TORCHELASTIC_RESTART_COUNT", 0, std::numeric_limits<int32_t>::max());
    check_rank(info, "RANK/WORLD_SIZE");
    return info;
  }
  if (getenv("SLURM_PROCID") && first_set(getenv, {"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"})) {  // srun
    info.launcher = "slurm";
    info.world_size =
        env_integer(getenv, getenv("SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS", 1, kMaxWorld);
    info.rank = env_integer(getenv, "SLURM_PROCID", 0, kMaxWorld);
    info.local_rank = getenv("SLURM_LOCALID") ? env_integer(getenv, "SLURM_LOCALID", 0, kMaxWorld) : 0;
    if (const char* nodes = first_set(getenv, {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"}))
      info.master_addr = first_slurm_host(nodes);
    // A port of the job's own, so two jobs sharing a node do not meet.
    if (getenv("SLURM_JOB_ID"))
      info.master_port =
          20000 + static_cast<int>(env_integer(getenv, "SLURM_JOB_ID", 0, kMaxWorld * kMaxWorld) % 20000);
    master_from_env();
    check_rank(info, "SLURM_PROCID/SLURM_NTASKS");
    return info;
  }
  if (backend.distributed && backend.num_processes.value_or(1) > 1) {  // the official config's own launch
    info.launcher = "config";
    info.world_size = *backend.num_processes;
    if (!backend.process_id)
      throw ConfigError("backend.process_id is not set (backend.distributed=true with num_processes > 1 needs it)");
    info.rank = *backend.process_id;
    info.local_rank = 0;
    parse_coordinator(require(backend.coordinator_address, "backend.coordinator_address"), info);
    if (info.rank < 0) throw ConfigError("backend.process_id must be >= 0");
    check_rank(info, "backend.process_id/backend.num_processes");
  }
  return info;
}

}  // namespace ttt

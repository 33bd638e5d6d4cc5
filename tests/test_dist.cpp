// Data-parallel training across processes of the `ttt` binary, on loopback Gloo: two ranks train
// to the weights one process trains with the same global batch (meta and pretrain, with and
// without accumulation) and evaluate to its NLL; a kill -9 of both ranks resumes bitwise; a lost
// rank ends the others within the timeout, naming it; bad launches fail within the timeout; a
// configuration that differs between ranks is refused, naming the key; torchrun launches it; two
// network namespaces joined by a veth pair stand for two hosts.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/dist_runs.h"
#include "support/process_groups.h"

namespace fs = std::filesystem;
using namespace ttt;
using namespace ttt::testing;

namespace {

void expect_two_ranks_match_one(const std::string& variant) {
  auto dir = fresh_temp_dir("equiv_" + variant);
  const int64_t steps = 4;
  ASSERT_EQ(run(run_args(dir, "one", variant, steps), dir / "one.log"), 0) << read_bytes(dir / "one.log");
  ASSERT_TRUE(all_succeed(launch(run_args(dir, "two", variant, steps), dir, "two", 2), dir, "two"));
  ASSERT_TRUE(all_succeed(launch(run_args(dir, "two_accum", variant, steps, /*accum=*/2), dir, "two_accum", 2), dir,
                          "two_accum"));
  const auto one = final_checkpoint(dir, "one", steps);
  for (const char* exp : {"two", "two_accum"}) {
    SCOPED_TRACE(exp);
    const double difference = max_weight_difference(one, final_checkpoint(dir, exp, steps));
    std::cout << "[measured] " << variant << " " << exp << ": largest weight difference to one process " << difference
              << std::endl;
    EXPECT_LT(difference, kWeightTolerance);
    // Evaluation is sharded and reduced: the NLL by position is one process's. (The eval batch,
    // and so the sequences dropped, depends on accum_steps by the reference's rule.)
    if (std::string(exp) == "two_accum") continue;
    const auto a = eval_json(dir, "one"), b = eval_json(dir, exp);
    EXPECT_EQ(a.at("num_sequences"), b.at("num_sequences"));
    EXPECT_NEAR(a.at("loss").get<double>(), b.at("loss").get<double>(), kLossTolerance);
    const auto pa = a.at("nll_by_position").get<std::vector<double>>(),
               pb = b.at("nll_by_position").get<std::vector<double>>();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) EXPECT_NEAR(pa[i], pb[i], kLossTolerance) << i;
  }
  // Only rank 0 writes: one metrics line per step, logged as global numbers.
  std::ifstream metrics(dir / "exp" / "demo" / "two" / "metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line);) ++lines;
  EXPECT_EQ(lines, steps);
  fs::remove_all(dir);
}

}  // namespace

TEST(Dist, TwoRanksTrainTheWeightsOfOneProcessMeta) {
  REQUIRE_CPU_PROCESS_GROUPS();
  expect_two_ranks_match_one("e2e");
}

TEST(Dist, TwoRanksTrainTheWeightsOfOneProcessPretrain) {
  REQUIRE_CPU_PROCESS_GROUPS();
  expect_two_ranks_match_one("fa");
}

TEST(Dist, KillNineOfBothRanksThenResumeIsBitwise) {
  REQUIRE_CPU_PROCESS_GROUPS();
  auto dir = fresh_temp_dir("kill_both");
  const int64_t steps = 8;
  ASSERT_TRUE(all_succeed(launch(run_args(dir, "straight", "e2e", steps), dir, "straight", 2), dir, "straight"));

  const auto checkpoints = dir / "ckpt" / "demo" / "interrupted";
  auto pids = launch(run_args(dir, "interrupted", "e2e", steps), dir, "interrupted", 2);
  ASSERT_TRUE(wait_for_checkpoint(checkpoints, 2)) << read_bytes(dir / "interrupted.0.log");
  for (pid_t pid : pids) kill(pid, SIGKILL);
  for (pid_t pid : pids) wait_exit(pid);
  const int64_t killed_after = complete_checkpoint_steps(checkpoints.string()).back();
  ASSERT_LT(killed_after, steps - 1) << "the run finished before it could be killed";

  ASSERT_TRUE(all_succeed(launch(run_args(dir, "interrupted", "e2e", steps), dir, "resumed", 2), dir, "resumed"));
  EXPECT_NE(read_bytes(dir / "resumed.0.log").find("resuming at step"), std::string::npos);
  for (const char* file : {"model.safetensors", "optimizer.safetensors"})
    EXPECT_TRUE(read_bytes(final_checkpoint(dir, "straight", steps) / file) ==
                read_bytes(final_checkpoint(dir, "interrupted", steps) / file))
        << file << " differs after a kill -9 after step " << killed_after;
  fs::remove_all(dir);
}

TEST(Dist, ALostRankEndsTheOthersWithinTheTimeoutNamingIt) {
  REQUIRE_CPU_PROCESS_GROUPS();
  for (int victim : {1, 0}) {
    SCOPED_TRACE("killed rank " + std::to_string(victim));
    auto dir = fresh_temp_dir("lost_" + std::to_string(victim));
    auto args = run_args(dir, "lost", "e2e", 1000);
    args.push_back("backend.dist_timeout_s=20");
    auto pids = launch(args, dir, "lost", 2);
    ASSERT_TRUE(wait_for_checkpoint(dir / "ckpt" / "demo" / "lost", 0)) << read_bytes(dir / "lost.0.log");
    kill(pids[victim], SIGKILL);
    wait_exit(pids[victim]);
    const int survivor = 1 - victim;
    const auto started = std::chrono::steady_clock::now();
    const int code = wait_exit_within(pids[survivor], std::chrono::seconds(20 + 10));
    const std::string log = read_bytes(dir / ("lost." + std::to_string(survivor) + ".log"));
    EXPECT_NE(code, -1) << "rank " << survivor << " still ran 30 s after its peer died:\n" << log;
    EXPECT_NE(code, 0) << log;
    EXPECT_NE(log.find("lost rank " + std::to_string(victim)), std::string::npos) << log;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
    fs::remove_all(dir);
  }
}

TEST(Dist, AnUnreachableMasterOrATakenPortFailsWithinTheTimeout) {
  auto dir = fresh_temp_dir("unreachable");
  auto args = run_args(dir, "alone", "e2e", 2);
  args.push_back("backend.dist_timeout_s=3");
  // Rank 1 of 2, and nobody hosts the rendezvous.
  const auto started = std::chrono::steady_clock::now();
  const int code = wait_exit_within(spawn(args, dir / "alone.log", kTttBinary, rank_env(1, 2, free_port())),
                                    std::chrono::seconds(30));
  EXPECT_EQ(code, 1) << read_bytes(dir / "alone.log");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  EXPECT_NE(read_bytes(dir / "alone.log").find("cannot reach the rendezvous"), std::string::npos)
      << read_bytes(dir / "alone.log");

  // Rank 0 on a port something else listens on.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int taken = ntohs(addr.sin_port);
  const int code0 =
      wait_exit_within(spawn(args, dir / "taken.log", kTttBinary, rank_env(0, 2, taken)), std::chrono::seconds(30));
  close(fd);
  EXPECT_EQ(code0, 1) << read_bytes(dir / "taken.log");
  EXPECT_NE(read_bytes(dir / "taken.log").find("port in use"), std::string::npos) << read_bytes(dir / "taken.log");
  fs::remove_all(dir);
}

TEST(Dist, RanksWithDifferentConfigurationsAreRefusedNamingTheKey) {
  REQUIRE_CPU_PROCESS_GROUPS();
  auto dir = fresh_temp_dir("mismatch");
  const int port = free_port();
  auto a = run_args(dir, "mismatch", "e2e", 2), b = a;
  b.push_back("training.optimizer_outer.lr=0.5");
  const auto p0 = spawn(a, dir / "r0.log", kTttBinary, rank_env(0, 2, port));
  const auto p1 = spawn(b, dir / "r1.log", kTttBinary, rank_env(1, 2, port));
  EXPECT_EQ(wait_exit_within(p0, std::chrono::seconds(60)), 2) << read_bytes(dir / "r0.log");
  EXPECT_EQ(wait_exit_within(p1, std::chrono::seconds(60)), 2) << read_bytes(dir / "r1.log");
  for (const char* log : {"r0.log", "r1.log"})
    EXPECT_NE(read_bytes(dir / log).find("training.optimizer_outer.lr"), std::string::npos) << read_bytes(dir / log);
  fs::remove_all(dir);
}

namespace {

// The processes whose parent is `parent`.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(std::stoi(name));
  }
  return out;
}

bool have_command(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace

TEST(Dist, TorchrunLaunchesItAndRestartsItFromTheLastCheckpoint) {
  REQUIRE_CPU_PROCESS_GROUPS();
  if (!have_command("torchrun")) GTEST_SKIP() << "torchrun is not installed (Debian: apt install python3-torch)";
  auto dir = fresh_temp_dir("torchrun");
  const int64_t steps = 8;
  ASSERT_TRUE(all_succeed(launch(run_args(dir, "straight", "e2e", steps), dir, "straight", 2), dir, "straight"));

  // Debian 12's torchrun (torch 1.13 on Python 3.11) fails on its default --redirects 0 / --tee 0
  // (Python 3.11 no longer lists the zero flag of an IntFlag); an explicit 1 avoids that bug.
  std::vector<std::string> args = {"--nproc_per_node=2",
                                   "--master_port=" + std::to_string(free_port()),
                                   "--max_restarts=1",
                                   "--redirects=1",
                                   "--tee=1",
                                   "--no_python",
                                   kTttBinary};
  for (const auto& a : run_args(dir, "torchrun", "e2e", steps)) args.push_back(a);
  const pid_t agent = spawn(args, dir / "torchrun.log", "torchrun");
  // Once a checkpoint is written, kill -9 one worker: the agent restarts both, which resume.
  const auto checkpoints = dir / "ckpt" / "demo" / "torchrun";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (complete_checkpoint_steps(checkpoints.string()).empty() ||
         complete_checkpoint_steps(checkpoints.string()).back() < 2) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << read_bytes(dir / "torchrun.log");
    int status = 0;
    ASSERT_EQ(waitpid(agent, &status, WNOHANG), 0) << "torchrun exited early:\n" << read_bytes(dir / "torchrun.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto workers = children_of(agent);
  ASSERT_FALSE(workers.empty());
  kill(workers.back(), SIGKILL);
  const int code = wait_exit_within(agent, std::chrono::seconds(300));
  const std::string log = read_bytes(dir / "torchrun.log");
  ASSERT_EQ(code, 0) << log;
  EXPECT_NE(log.find("rank 0 of 2 (torchrun"), std::string::npos) << log;
  EXPECT_NE(log.find("resuming at step"), std::string::npos) << log;
  for (const char* file : {"model.safetensors", "optimizer.safetensors"})
    EXPECT_TRUE(read_bytes(final_checkpoint(dir, "straight", steps) / file) ==
                read_bytes(final_checkpoint(dir, "torchrun", steps) / file))
        << file << " of the restarted torchrun job differs from an uninterrupted run's";
  fs::remove_all(dir);
}

TEST(Dist, TwoHostsJoinedByAVethPairTrainTheWeightsOfOneProcess) {
  REQUIRE_CPU_PROCESS_GROUPS();
  // Two network namespaces stand for two hosts: each has only its end of a veth pair, and the
  // master address is the other namespace's.
  const std::string tag = std::to_string(getpid() % 100000);
  const std::string a = "ttt_a" + tag, b = "ttt_b" + tag, va = "tva" + tag, vb = "tvb" + tag;
  const auto sh = [](const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); };
  if (!have_command("ip")) GTEST_SKIP() << "iproute2's ip is not installed";
  if (sh("ip netns add " + a) != 0) GTEST_SKIP() << "cannot create network namespaces here (needs CAP_SYS_ADMIN)";
  struct Cleanup {
    std::function<void()> fn;
    ~Cleanup() { fn(); }
  } cleanup{[&] { sh("ip netns del " + a + "; ip netns del " + b); }};
  ASSERT_EQ(sh("ip netns add " + b), 0);
  ASSERT_EQ(sh("ip link add " + va + " type veth peer name " + vb), 0);
  ASSERT_EQ(sh("ip link set " + va + " netns " + a + " && ip link set " + vb + " netns " + b), 0);
  ASSERT_EQ(sh("ip -n " + a + " addr add 10.231.0.1/24 dev " + va + " && ip -n " + a + " link set " + va +
               " up && ip -n " + a + " link set lo up"),
            0);
  ASSERT_EQ(sh("ip -n " + b + " addr add 10.231.0.2/24 dev " + vb + " && ip -n " + b + " link set " + vb +
               " up && ip -n " + b + " link set lo up"),
            0);

  auto dir = fresh_temp_dir("two_hosts");
  const int64_t steps = 3;
  ASSERT_EQ(run(run_args(dir, "one", "e2e", steps), dir / "one.log"), 0) << read_bytes(dir / "one.log");
  const int port = 29000 + getpid() % 1000;
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r) {
    std::vector<std::string> args = {"netns", "exec", r == 0 ? a : b, kTttBinary};
    for (const auto& x : run_args(dir, "two_hosts", "e2e", steps)) args.push_back(x);
    auto env = rank_env(r, 2, port, "10.231.0.1");
    env["LOCAL_RANK"] = "0";  // each "host" has one process
    pids.push_back(spawn(args, dir / ("two_hosts." + std::to_string(r) + ".log"), "ip", env));
  }
  ASSERT_TRUE(all_succeed(pids, dir, "two_hosts"));
  EXPECT_LT(max_weight_difference(final_checkpoint(dir, "one", steps), final_checkpoint(dir, "two_hosts", steps)),
            kWeightTolerance);
  fs::remove_all(dir);
}

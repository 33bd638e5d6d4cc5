#include "dist/process_group.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef TTT_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef TTT_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "config/loader.h"
#include "util/checksum.h"
#include "util/strings.h"
#include "util/torch_compat.h"

namespace ttt {
namespace {

#if TTT_C10D_HAS_BACKEND
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

// The address of this host on the route to `host`: a UDP socket "connected" there (no packet is
// sent) is bound to the interface the kernel would use.
std::string local_address_towards(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
    throw DistError("cannot resolve the master address '" + host + "'");
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  const bool ok = fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) == 0;
  freeaddrinfo(found);
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  const bool named = ok && getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0;
  if (fd >= 0) close(fd);
  if (!named) throw DistError("no network route from this host to the master address '" + host + "'");
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &local.sin_addr, text, sizeof(text));
  return text;
}

#ifdef TTT_C10D_GLOO
// The network device Gloo binds: GLOO_SOCKET_IFNAME as PyTorch reads it, else the address of this
// host on the route to the master (loopback for a local master), which every rank can reach when
// the master can be reached at all.
std::shared_ptr<::gloo::transport::Device> gloo_device(const LaunchInfo& launch) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  return c10d::ProcessGroupGloo::createDeviceForHostname(local_address_towards(launch.master_addr, launch.master_port));
}
#endif

std::string seconds(std::chrono::milliseconds t) { return std::to_string(t.count() / 1000) + " s"; }

}  // namespace

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;  // the run's keys (under the restart attempt's prefix)
  c10::intrusive_ptr<Collectives> collectives;
  // The heartbeat: a second store connection, so a blocked exchange on the first never stalls it.
  c10::intrusive_ptr<c10d::Store> heartbeat_store;
  std::thread heartbeat;
  std::mutex mutex;
  std::condition_variable stop_cv;
  bool stopping = false;
};

namespace {

// A collective started on c10d; starting or waiting for it fails as ProcessGroup::fail says.
class Collective : public PendingReduce {
 public:
  template <typename Start>
  Collective(const ProcessGroup& group, const char* operation, Start start) : group_(group), operation_(operation) {
    try {
      work_ = start();
    } catch (const std::exception& e) {
      group_.fail(operation_, e.what());
    }
  }
  void wait() override {
    try {
      work_->wait();
    } catch (const std::exception& e) {
      group_.fail(operation_, e.what());
    }
  }

 private:
  const ProcessGroup& group_;
  const char* operation_;
  c10::intrusive_ptr<c10d::Work> work_;
};

class DonePendingReduce : public PendingReduce {
 public:
  void wait() override {}
};

c10::intrusive_ptr<c10d::Store> open_store(const LaunchInfo& launch, bool host, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(launch.master_port);
  options.isServer = host;
  if (host) options.numWorkers = static_cast<size_t>(launch.world_size);
  options.waitWorkers = false;
  options.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(launch.master_addr, options);
  } catch (const std::exception& e) {
    if (std::string(e.what()).find("libuv") == std::string::npos) throw;
    use_classic_store_server(options, 0);
    store = c10::make_intrusive<c10d::TCPStore>(launch.master_addr, options);
  }
  // torchrun's agent keeps its store across restarts: each attempt has its own keys, as
  // torch.distributed's env:// rendezvous does.
  const std::string prefix =
      launch.agent_store ? "/worker/attempt_" + std::to_string(launch.restart_count) + "/ttt" : "ttt";
  return c10::make_intrusive<c10d::PrefixStore>(prefix, store);
}

}  // namespace

ProcessGroup::ProcessGroup() : impl_(std::make_unique<Impl>()) {}

ProcessGroup::ProcessGroup(const LaunchInfo& launch, torch::Device device, std::chrono::milliseconds timeout)
    : launch_(launch), timeout_(timeout), device_(device), impl_(std::make_unique<Impl>()) {
  if (!launch.distributed()) return;
  const std::string where = launch.master_addr + ":" + std::to_string(launch.master_port);
  try {
    impl_->store = open_store(launch, !launch.agent_store && launch.rank == 0, timeout);
    impl_->heartbeat_store = open_store(launch, false, timeout);
  } catch (const std::exception& e) {
    const std::string cause = first_line(e.what());
    if (!launch.agent_store && launch.rank == 0)
      throw DistError("rank 0 cannot host the rendezvous at " + where + " (" + cause +
                      "); is the port in use? pick another with MASTER_PORT");
    throw DistError("rank " + std::to_string(launch.rank) + " cannot reach the rendezvous at " + where + " within " +
                    seconds(timeout) + " (" + cause + "); check MASTER_ADDR/MASTER_PORT and that rank 0 runs");
  }
  try {
    auto group_store = c10::make_intrusive<c10d::PrefixStore>("collectives", impl_->store);
    if (device.is_cuda()) {
#ifdef TTT_C10D_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      impl_->collectives = c10::make_intrusive<c10d::ProcessGroupNCCL>(group_store, static_cast<int>(launch.rank),
                                                                       static_cast<int>(launch.world_size), options);
#else
      throw ConfigError("backend.device=" + device.str() +
                        " in a distributed run needs a LibTorch built with NCCL (this one has none)");
#endif
    } else {
#ifdef TTT_C10D_GLOO
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      options->devices.push_back(gloo_device(launch));
      impl_->collectives = c10::make_intrusive<c10d::ProcessGroupGloo>(group_store, static_cast<int>(launch.rank),
                                                                       static_cast<int>(launch.world_size), options);
#else
      throw ConfigError(
          "a distributed run on the CPU needs Gloo, and this build found no Gloo headers "
          "(docs/gpu.md: building against a LibTorch without them)");
#endif
    }
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw DistError("rank " + std::to_string(launch.rank) + ": the " + std::to_string(launch.world_size) +
                    " processes did not all join at " + where + " within " + seconds(timeout) + " (" +
                    first_line(e.what()) + ")");
  }
  impl_->heartbeat = std::thread([this] {
    const std::string key = "heartbeat/" + std::to_string(launch_.rank);
    std::unique_lock<std::mutex> lock(impl_->mutex);
    for (int64_t beat = 0; !impl_->stopping; ++beat) {
      lock.unlock();
      try {
        impl_->heartbeat_store->set(key, std::vector<uint8_t>{static_cast<uint8_t>(beat & 0xff)});
      } catch (const std::exception&) {
        // The store is gone (its host was lost); the failing collective will say so.
      }
      lock.lock();
      impl_->stop_cv.wait_for(lock, std::chrono::seconds(1), [this] { return impl_->stopping; });
    }
  });
}

ProcessGroup::~ProcessGroup() {
  if (impl_ && impl_->heartbeat.joinable()) {
    {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      impl_->stopping = true;
    }
    impl_->stop_cv.notify_all();
    impl_->heartbeat.join();
  }
}

void ProcessGroup::fail(const std::string& operation, const std::string& cause) const {
  const std::string who = "rank " + std::to_string(rank()) + ": " + operation + " failed";
  std::vector<int64_t> lost;
  try {
    // Two readings of every heartbeat, three beats apart: a rank whose beat did not move is lost.
    std::vector<std::vector<uint8_t>> first(world_size());
    for (int64_t r = 0; r < world_size(); ++r) first[r] = impl_->heartbeat_store->get("heartbeat/" + std::to_string(r));
    std::this_thread::sleep_for(std::chrono::milliseconds(3200));
    for (int64_t r = 0; r < world_size(); ++r)
      if (r != rank() && impl_->heartbeat_store->get("heartbeat/" + std::to_string(r)) == first[r]) lost.push_back(r);
  } catch (const std::exception&) {
    if (!launch_.agent_store && rank() != 0)
      throw DistError(who + ": lost rank 0 (it hosts the rendezvous store, which no longer answers); " +
                      first_line(cause));
    throw DistError(who + ": the rendezvous store no longer answers; " + first_line(cause));
  }
  if (lost.empty())
    throw DistError(who + " with every rank alive: timed out after " + seconds(timeout_) +
                    " (backend.dist_timeout_s) or a rank failed on its own; " + first_line(cause));
  std::string names;
  for (auto r : lost) names += (names.empty() ? "" : ", ") + std::to_string(r);
  throw DistError(who + ": lost rank " + names + " (its heartbeat stopped); " + first_line(cause));
}

void ProcessGroup::all_reduce_sum(torch::Tensor& tensor) { all_reduce_sum_async(tensor)->wait(); }

std::unique_ptr<PendingReduce> ProcessGroup::all_reduce_sum_async(torch::Tensor& tensor) {
  if (!distributed()) return std::make_unique<DonePendingReduce>();
  std::vector<torch::Tensor> tensors{tensor};
  return std::make_unique<Collective>(*this, "all-reduce", [&] { return impl_->collectives->allreduce(tensors); });
}

void ProcessGroup::all_reduce_max(torch::Tensor& tensor) {
  if (!distributed()) return;
  std::vector<torch::Tensor> tensors{tensor};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::MAX;
  Collective(*this, "all-reduce", [&] { return impl_->collectives->allreduce(tensors, options); }).wait();
}

void ProcessGroup::broadcast(torch::Tensor& tensor, int64_t root) {
  if (!distributed()) return;
  std::vector<torch::Tensor> tensors{tensor};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  Collective(*this, "broadcast", [&] { return impl_->collectives->broadcast(tensors, options); }).wait();
}

double ProcessGroup::mean(double value) {
  if (!distributed()) return value;
  auto t = torch::tensor({value}, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
  all_reduce_sum(t);
  return t.item<double>() / static_cast<double>(world_size());
}

double ProcessGroup::max(double value) {
  if (!distributed()) return value;
  auto t = torch::tensor({value}, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
  all_reduce_max(t);
  return t.item<double>();
}

std::string describe(const ProcessGroup& group) {
  const auto& l = group.launch();
  return "rank " + std::to_string(l.rank) + " of " + std::to_string(l.world_size) + " (" + l.launcher +
         ", rendezvous " + l.master_addr + ":" + std::to_string(l.master_port) + ")";
}

void ProcessGroup::barrier() {
  if (!distributed()) return;
  Collective(*this, "barrier", [&] { return impl_->collectives->barrier(); }).wait();
}

std::string ProcessGroup::broadcast_string(const std::string& value) {
  if (!distributed()) return value;
  const std::string key = "value/" + std::to_string(store_sequence_++);
  try {
    if (is_main()) impl_->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
    const auto bytes = impl_->store->get(key);
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    fail("exchange through the store", e.what());
  }
}

std::vector<std::string> ProcessGroup::all_gather_strings(const std::string& value) {
  if (!distributed()) return {value};
  const std::string key = "values/" + std::to_string(store_sequence_++) + "/";
  std::vector<std::string> out;
  try {
    impl_->store->set(key + std::to_string(rank()), std::vector<uint8_t>(value.begin(), value.end()));
    for (int64_t r = 0; r < world_size(); ++r) {
      const auto bytes = impl_->store->get(key + std::to_string(r));
      out.emplace_back(bytes.begin(), bytes.end());
    }
  } catch (const std::exception& e) {
    fail("exchange through the store", e.what());
  }
  return out;
}

std::unique_ptr<ProcessGroup> make_process_group(const Config& config, const LaunchInfo& launch, torch::Device device) {
  if (!launch.distributed()) return std::make_unique<ProcessGroup>();
  return std::make_unique<ProcessGroup>(launch, device,
                                        std::chrono::milliseconds(config.backend.dist_timeout_s * 1000));
}

namespace {

// The leaves of a YAML document as (dotted key, value) in document order.
void flatten(const YAML::Node& node, const std::string& key, std::vector<std::pair<std::string, std::string>>& out) {
  if (node.IsMap()) {
    for (const auto& item : node)
      flatten(item.second, key.empty() ? item.first.as<std::string>() : key + "." + item.first.as<std::string>(), out);
  } else {
    YAML::Emitter e;
    e << YAML::Flow << node;
    out.emplace_back(key, e.c_str());
  }
}

}  // namespace

void check_same_config(ProcessGroup& group, const Config& config) {
  if (!group.distributed()) return;
  const std::string yaml = to_yaml(config);
  const auto hashes = group.all_gather_strings(std::to_string(checksum_bytes(yaml.data(), yaml.size())));
  int64_t differing = -1;
  for (int64_t r = 0; r < group.world_size() && differing < 0; ++r)
    if (hashes[r] != hashes[0]) differing = r;
  if (differing < 0) return;
  // Every rank learns rank 0's and the first differing rank's configuration, so every rank fails alike.
  const auto all = group.all_gather_strings(yaml);
  group.barrier();  // every rank has what it needs before any leaves
  std::vector<std::pair<std::string, std::string>> a, b;
  flatten(YAML::Load(all[0]), "", a);
  flatten(YAML::Load(all[differing]), "", b);
  std::string key = "(the order of keys)";
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i >= a.size() || i >= b.size() || a[i] != b[i]) {
      key = i < b.size() ? b[i].first : a[i].first;
      const auto value = [&](const auto& v) { return i < v.size() && v[i].first == key ? v[i].second : "(absent)"; };
      throw ConfigError("rank " + std::to_string(differing) + " resolved a different configuration than rank 0: " +
                        key + " is " + value(b) + " there and " + value(a) + " on rank 0");
    }
  }
  throw ConfigError("rank " + std::to_string(differing) + " resolved a different configuration than rank 0 " + key);
}

bool cpu_process_groups_available() {
#ifdef TTT_C10D_GLOO
  return true;
#else
  return false;
#endif
}

}  // namespace ttt

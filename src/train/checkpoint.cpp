#include "train/checkpoint.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "config/loader.h"
#include "model/layers.h"
#include "train/outer_optimizer.h"
#include "util/safetensors.h"

namespace ttt {
namespace fs = std::filesystem;

namespace {

constexpr int kFormatVersion = 1;
constexpr const char* kMilestoneMarker = "milestone";

bool is_step_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A step directory is complete when its state.json exists: it is written last, inside the
// temporary directory, before the rename that publishes the checkpoint.
bool is_complete(const fs::path& dir) { return fs::is_regular_file(dir / "state.json"); }

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  if (!out) throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

// A save in progress writes into ".tmp-<step>-<host>-<pid>" beside the step directories; the
// rename publishes it.
std::string temp_dir_name(int64_t step) {
  return ".tmp-" + std::to_string(step) + "-" + host_name() + "-" + std::to_string(getpid());
}

// Whether `name` is a temporary directory left by a process of this host that no longer runs (a
// killed save): only such a directory is certainly nobody's work in progress. Another process
// saving into the same directory (a second trainer), an evaluation reading it, or a process on
// another host sharing the file system keep theirs.
bool is_abandoned_temp_dir(const std::string& name) {
  const std::string prefix = ".tmp-";
  if (name.rfind(prefix, 0) != 0) return false;
  const auto pid_dash = name.rfind('-');
  const auto step_dash = name.find('-', prefix.size());
  if (pid_dash == std::string::npos || step_dash == std::string::npos || step_dash >= pid_dash) return false;
  if (name.substr(step_dash + 1, pid_dash - step_dash - 1) != host_name()) return false;
  const std::string pid_text = name.substr(pid_dash + 1);
  if (pid_text.empty() || pid_text.size() > 9 || !std::all_of(pid_text.begin(), pid_text.end(), ::isdigit)) return false;
  const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
  return kill(pid, 0) != 0 && errno == ESRCH;
}

}  // namespace

Checkpointer::Checkpointer(std::string dir, CheckpointPolicy policy) : dir_(std::move(dir)), policy_(policy) {
  fs::create_directories(dir_);
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.is_directory() && is_abandoned_temp_dir(e.path().filename().string())) fs::remove_all(e.path());
}

void Checkpointer::save(const TrainState& state, const ModelWeights& weights, const OuterOptimizer* optimizer,
                        const Config& config, bool milestone) {
  const fs::path tmp = fs::path(dir_) / temp_dir_name(state.step);
  try {
    write_checkpoint(tmp, state, weights, optimizer, config, milestone);
  } catch (...) {
    // A failed save (disk full, file-size limit) leaves nothing behind; earlier checkpoints stay.
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
  publish(tmp, state.step);
}

void Checkpointer::write_checkpoint(const fs::path& tmp, const TrainState& state, const ModelWeights& weights,
                                    const OuterOptimizer* optimizer, const Config& config, bool milestone) {
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  const auto float_dtype = scalar_type(config.checkpoint.float_dtype);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (size_t i = 0; i < weights.layout().size(); ++i)
    named.emplace_back(weights.layout()[i].name, weights.tensors()[i].detach().to(float_dtype));
  save_safetensors((tmp / "model.safetensors").string(), named, {{"format", "pt"}, {"step", std::to_string(state.step)}});
  if (optimizer != nullptr && config.checkpoint.save_optimizer_state)
    save_safetensors((tmp / "optimizer.safetensors").string(), optimizer->state_tensors());
  write_file(tmp / "config.yaml", to_yaml(config));
  if (milestone) write_file(tmp / kMilestoneMarker, "");
  const nlohmann::json j = {{"format_version", kFormatVersion},
                            {"step", state.step},
                            {"loader_position", state.loader_position},
                            {"milestone", milestone},
                            {"has_optimizer_state", optimizer != nullptr && config.checkpoint.save_optimizer_state}};
  write_file(tmp / "state.json", j.dump(2) + "\n");
}

void Checkpointer::publish(const fs::path& tmp, int64_t step) {
  // A checkpoint of the same step (a re-run) is replaced only now.
  const fs::path final_dir = fs::path(dir_) / std::to_string(step);
  if (fs::exists(final_dir)) fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);

  // Keep the last keep_last regular checkpoints; milestones stay.
  std::vector<int64_t> regular;
  for (int64_t s : complete_checkpoint_steps(dir_))
    if (!fs::exists(fs::path(dir_) / std::to_string(s) / kMilestoneMarker)) regular.push_back(s);
  const int64_t excess = static_cast<int64_t>(regular.size()) - policy_.keep_last;
  for (int64_t i = 0; i < excess; ++i)
    if (regular[i] != step) fs::remove_all(fs::path(dir_) / std::to_string(regular[i]));
}

std::vector<int64_t> complete_checkpoint_steps(const std::string& checkpoint_dir) {
  std::vector<int64_t> steps;
  if (!fs::is_directory(checkpoint_dir)) return steps;
  for (const auto& e : fs::directory_iterator(checkpoint_dir)) {
    const auto name = e.path().filename().string();
    if (e.is_directory() && is_step_name(name) && is_complete(e.path())) steps.push_back(std::stoll(name));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::string find_checkpoint(const std::string& path, std::optional<int64_t> step) {
  if (is_complete(path)) {
    if (step && fs::path(path).filename() != std::to_string(*step))
      throw std::runtime_error(path + " is the checkpoint of another step than " + std::to_string(*step));
    return path;
  }
  if (!fs::is_directory(path)) throw std::runtime_error("checkpoint not found: " + path);
  const auto steps = complete_checkpoint_steps(path);
  if (steps.empty()) throw std::runtime_error("no complete checkpoint in " + path);
  if (!step) return (fs::path(path) / std::to_string(steps.back())).string();
  if (!std::binary_search(steps.begin(), steps.end(), *step))
    throw std::runtime_error("no complete checkpoint of step " + std::to_string(*step) + " in " + path);
  return (fs::path(path) / std::to_string(*step)).string();
}

Config load_checkpoint_config(const std::string& step_dir, const std::vector<std::string>& overrides) {
  return load_resolved_config((fs::path(step_dir) / "config.yaml").string(), overrides);
}

void load_checkpoint_weights(const std::string& step_dir, ModelWeights& weights) {
  const auto path = (fs::path(step_dir) / "model.safetensors").string();
  auto file = load_safetensors(path);
  for (size_t i = 0; i < weights.layout().size(); ++i) {
    const auto& spec = weights.layout()[i];
    auto it = file.tensors.find(spec.name);
    if (it == file.tensors.end()) throw std::runtime_error(path + ": no tensor '" + spec.name + "' (the model needs it)");
    if (it->second.sizes().vec() != spec.shape)
      throw std::runtime_error(path + ": tensor '" + spec.name + "' has shape " + c10::str(it->second.sizes()) +
                               ", the model expects " + c10::str(c10::IntArrayRef(spec.shape)));
    torch::NoGradGuard no_grad;
    weights.tensors()[i].copy_(it->second);
    file.tensors.erase(it);
  }
  if (!file.tensors.empty())
    throw std::runtime_error(path + ": tensor '" + file.tensors.begin()->first + "' is not a parameter of this model");
}

void load_checkpoint_optimizer(const std::string& step_dir, OuterOptimizer& optimizer) {
  const auto path = fs::path(step_dir) / "optimizer.safetensors";
  if (!fs::exists(path))
    throw std::runtime_error(step_dir + " has no optimizer state (saved with checkpoint.save_optimizer_state=false); "
                             "use training.load_part=params");
  optimizer.load_state_tensors(load_safetensors(path.string()).tensors);
}

TrainState load_checkpoint_state(const std::string& step_dir) {
  const auto path = fs::path(step_dir) / "state.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  try {
    const auto j = nlohmann::json::parse(in);
    if (j.at("format_version").get<int>() != kFormatVersion)
      throw std::runtime_error(path.string() + ": unsupported checkpoint format version");
    return TrainState{j.at("step").get<int64_t>(), j.at("loader_position").get<int64_t>()};
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

}  // namespace ttt

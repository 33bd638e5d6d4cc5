#include "train/checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "config/loader.h"
#include "model/layers.h"
#include "train/outer_optimizer.h"
#include "util/checksum.h"
#include "util/file_io.h"
#include "util/process_tag.h"
#include "util/safetensors.h"

namespace ttt {
namespace fs = std::filesystem;

namespace {

// 2: the loader position counts global samples ("loader_samples"); 1 counted the batches of the
// single process that wrote it ("loader_position"), read as batches of the checkpoint's global batch.
constexpr int kFormatVersion = 2;
constexpr const char* kMilestoneMarker = "milestone";
// The files of a checkpoint whose checksums state.json records (when present).
constexpr const char* kCheckedFiles[] = {"model.safetensors", "optimizer.safetensors", "config.yaml"};
// Steps and positions beyond any real run: a larger value in state.json is damage.
constexpr int64_t kMaxStep = int64_t{1} << 40;

bool is_step_name(const std::string& name) {
  return !name.empty() && name.size() <= 18 &&
         std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
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

// A save in progress writes into ".tmp-<step>-<host>-<pid>" beside the step directories; the
// rename publishes it.
const std::string kTempPrefix = ".tmp-";

// Whether a directory of the checkpoint directory is a temporary one left by a killed save of this
// host. Another live process's save (a second trainer) is left alone.
bool is_abandoned_temp_dir(const std::string& name) {
  if (name.rfind(kTempPrefix, 0) != 0) return false;
  const auto step_end = name.find('-', kTempPrefix.size());
  return step_end != std::string::npos && is_abandoned_process_tag(name.substr(step_end + 1));
}

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// The first tensor holding a NaN or an infinity, or "".
std::string first_non_finite(const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors)
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>()) return name;
  return "";
}

const std::string& require_string(const nlohmann::json& j, const std::string& key, const std::string& path) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) throw std::runtime_error(path + ": \"" + key + "\" is not a string");
  return it->get_ref<const std::string&>();
}

int64_t require_integer(const nlohmann::json& j, const std::string& key, int64_t min, int64_t max,
                        const std::string& path) {
  const auto it = j.find(key);
  if (it == j.end()) throw std::runtime_error(path + ": no \"" + key + "\"");
  if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(max)) ||
      it->get<int64_t>() < min || it->get<int64_t>() > max)
    throw std::runtime_error(path + ": \"" + key + "\" is " + it->dump() + ", expected an integer in [" +
                             std::to_string(min) + ", " + std::to_string(max) + "]");
  return it->get<int64_t>();
}

// Checks `file` of a step directory against the checksum its state.json records.
void verify_checksum(const std::string& step_dir, const std::string& file) {
  // state.json as written (load_checkpoint_state reads config.yaml for a format-1 file).
  const auto state_path = (fs::path(step_dir) / "state.json").string();
  const TrainState state = parse_checkpoint_state(read_file(state_path), state_path);
  const auto expected = state.checksums.find(file);
  if (expected == state.checksums.end()) return;  // a checkpoint written before checksums, or no such file
  const auto path = (fs::path(step_dir) / file).string();
  if (file_checksum(path) != expected->second)
    throw std::runtime_error(path + ": checksum " + file_checksum(path) + " differs from " + expected->second +
                             " recorded in state.json: the file is damaged");
}

}  // namespace

TrainState parse_checkpoint_state(const std::string& text, const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": not JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw std::runtime_error(path + ": not a JSON object");
  const int64_t version = require_integer(j, "format_version", 0, 1000, path);
  if (version != kFormatVersion && version != 1)
    throw std::runtime_error(path + ": \"format_version\" is " + j.at("format_version").dump() +
                             ", this build reads 1 and " + std::to_string(kFormatVersion));
  TrainState state;
  state.step = require_integer(j, "step", -1, kMaxStep, path);
  if (version == 1)
    state.legacy_loader_batches = require_integer(j, "loader_position", 0, kMaxStep, path);
  else
    state.loader_position = require_integer(j, "loader_samples", 0, kMaxStep, path);
  for (const char* flag : {"milestone", "has_optimizer_state"})
    if (j.contains(flag) && !j.at(flag).is_boolean())
      throw std::runtime_error(path + ": \"" + flag + "\" is not a boolean");
  state.has_optimizer_state = j.value("has_optimizer_state", true);
  if (j.contains("checksums")) {
    const auto& sums = j.at("checksums");
    if (!sums.is_object()) throw std::runtime_error(path + ": \"checksums\" is not an object");
    for (const char* file : kCheckedFiles)
      if (sums.contains(file)) state.checksums[file] = require_string(sums, file, path + " checksums");
  }
  return state;
}

Checkpointer::Checkpointer(std::string dir, CheckpointPolicy policy) : dir_(std::move(dir)), policy_(policy) {
  fs::create_directories(dir_);
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.is_directory() && is_abandoned_temp_dir(e.path().filename().string())) fs::remove_all(e.path());
}

void Checkpointer::save(const TrainState& state, const ModelWeights& weights, const OuterOptimizer* optimizer,
                        const Config& config, bool milestone) {
  const fs::path tmp = fs::path(dir_) / (kTempPrefix + std::to_string(state.step) + "-" + process_tag());
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
  const auto float_dtype = scalar_type(config.checkpoint.float_dtype);
  NamedTensors named;
  for (size_t i = 0; i < weights.layout().size(); ++i)
    named.emplace_back(weights.layout()[i].name, weights.tensors()[i].detach().to(float_dtype));
  const bool with_optimizer = optimizer != nullptr && config.checkpoint.save_optimizer_state;
  const NamedTensors optimizer_state = with_optimizer ? optimizer->state_tensors() : NamedTensors{};
  // A checkpoint never holds what a run cannot continue from.
  for (const NamedTensors* tensors : std::initializer_list<const NamedTensors*>{&named, &optimizer_state})
    if (const std::string bad = first_non_finite(*tensors); !bad.empty())
      throw std::runtime_error("refusing to write checkpoint " + std::to_string(state.step) + ": tensor '" + bad +
                               "' is not finite");

  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_safetensors(
      (tmp / "model.safetensors").string(), named,
      {{"format", "pt"}, {"step", std::to_string(state.step)}, {"dtype", safetensors_dtype_name(float_dtype)}});
  if (with_optimizer) save_safetensors((tmp / "optimizer.safetensors").string(), optimizer_state);
  write_file(tmp / "config.yaml", to_yaml(config));
  if (milestone) write_file(tmp / kMilestoneMarker, "");
  nlohmann::json checksums = nlohmann::json::object();
  for (const char* file : kCheckedFiles)
    if (fs::exists(tmp / file)) checksums[file] = file_checksum((tmp / file).string());
  const nlohmann::json j = {{"format_version", kFormatVersion},        {"step", state.step},
                            {"loader_samples", state.loader_position}, {"milestone", milestone},
                            {"has_optimizer_state", with_optimizer},   {"checksums", checksums}};
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

RestorePlan restore_plan(const Config& config) {
  const auto& t = config.training;
  const std::string& own = require(config.checkpoint.checkpoint_dir, "checkpoint.checkpoint_dir");
  if (!complete_checkpoint_steps(own).empty()) return RestorePlan{find_checkpoint(own, t.resume_step), LoadPart::kAll};
  if (t.load_part == LoadPart::kNone) return RestorePlan{};
  if (t.resume_exp_name.empty())
    throw ConfigError("training.load_part=" + to_string(t.load_part) +
                      " needs training.resume_exp_name (the run to load)");
  return RestorePlan{
      find_checkpoint(require(config.checkpoint.resume_checkpoint_dir, "checkpoint.resume_checkpoint_dir"),
                      t.resume_step),
      t.load_part};
}

Config load_checkpoint_config(const std::string& step_dir, const std::vector<std::string>& overrides) {
  verify_checksum(step_dir, "config.yaml");
  return load_resolved_config((fs::path(step_dir) / "config.yaml").string(), overrides);
}

void load_checkpoint_weights(const std::string& step_dir, ModelWeights& weights) {
  const auto path = (fs::path(step_dir) / "model.safetensors").string();
  verify_checksum(step_dir, "model.safetensors");
  auto file = load_safetensors(path);
  // The dtype the checkpoint declares (checkpoint.float_dtype when it was written); a checkpoint
  // from before that record holds floating-point weights (copy_named_tensors checks those).
  const auto declared = file.metadata.find("dtype");
  if (declared != file.metadata.end())
    for (const auto& spec : weights.layout()) {
      const auto it = file.tensors.find(spec.name);
      if (it == file.tensors.end()) continue;
      const std::string dtype = safetensors_dtype_name(it->second.scalar_type());
      if (dtype != declared->second)
        throw std::runtime_error(path + ": tensor '" + spec.name + "' is " + dtype + ", the checkpoint declares " +
                                 declared->second);
    }
  copy_named_tensors(std::move(file.tensors), weights, path);
}

ModelWeights checkpoint_weights(const std::string& step_dir, const ModelConfig& model, torch::Device device) {
  auto weights = ModelWeights::zeros(model, scalar_type(model.param_dtype), device);
  load_checkpoint_weights(step_dir, weights);
  return weights;
}

void load_checkpoint_optimizer(const std::string& step_dir, OuterOptimizer& optimizer) {
  const auto path = fs::path(step_dir) / "optimizer.safetensors";
  if (!load_checkpoint_state(step_dir).has_optimizer_state)
    throw std::runtime_error(step_dir +
                             " has no optimizer state (saved with checkpoint.save_optimizer_state=false); "
                             "use training.load_part=params");
  if (!fs::exists(path)) throw std::runtime_error(path.string() + " is missing (its state.json says it was written)");
  verify_checksum(step_dir, "optimizer.safetensors");
  try {
    optimizer.load_state_tensors(load_safetensors(path.string()).tensors);
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    if (what.rfind(path.string(), 0) == 0) throw;
    throw std::runtime_error(path.string() + ": " + what);
  }
}

TrainState load_checkpoint_state(const std::string& step_dir) {
  const auto path = (fs::path(step_dir) / "state.json").string();
  TrainState state = parse_checkpoint_state(read_file(path), path);
  if (state.legacy_loader_batches) {  // one process wrote it: a batch was a global batch
    const int64_t global_batch = load_checkpoint_config(step_dir).training.global_batch_size;
    if (*state.legacy_loader_batches > kMaxStep / global_batch)
      throw std::runtime_error(path + ": \"loader_position\" is out of range");
    state.loader_position = *state.legacy_loader_batches * global_batch;
    state.legacy_loader_batches.reset();
  }
  return state;
}

}  // namespace ttt

// Checkpoints: {checkpoint.checkpoint_dir}/<step>/ holds everything needed to resume exactly:
//   model.safetensors      the weights (readable by any safetensors library), names as in param_layout
//   optimizer.safetensors  AdamW moments and step counts (unless checkpoint.save_optimizer_state=false)
//   state.json             step, global loader position in samples, format version, checksums of
//                          the files above
//   config.yaml            the resolved configuration of the run
// <step> is the index of the last completed training step. A checkpoint is written to a temporary
// sibling directory (.tmp-<step>-<host>-<pid>) and renamed into place when complete, so a crash or
// kill at any moment leaves the previous checkpoints intact; incomplete directories are ignored. A
// failed save removes its own temporary directory; a Checkpointer removes those of dead processes
// of its host only, never another live process's save in progress.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/weights.h"

namespace ttt {

class OuterOptimizer;

struct TrainState {
  int64_t step = -1;            // last completed step index
  int64_t loader_position = 0;  // global samples the training loader has handed out (all ranks)
  // Read from a checkpoint's state.json (written by Checkpointer::save):
  bool has_optimizer_state = true;
  // A format-1 state.json counted batches; load_checkpoint_state converts them to samples.
  std::optional<int64_t> legacy_loader_batches;
  std::map<std::string, std::string> checksums;  // file -> util/checksum.h checksum
};

struct CheckpointPolicy {
  int64_t keep_last = 3;  // regular checkpoints kept (milestones are always kept)
};

class Checkpointer {
 public:
  Checkpointer(std::string dir, CheckpointPolicy policy);
  // Writes checkpoint `state.step` atomically, then prunes old non-milestone checkpoints.
  void save(const TrainState& state, const ModelWeights& weights, const OuterOptimizer* optimizer, const Config& config,
            bool milestone);
  const std::string& dir() const { return dir_; }

 private:
  void write_checkpoint(const std::filesystem::path& tmp, const TrainState& state, const ModelWeights& weights,
                        const OuterOptimizer* optimizer, const Config& config, bool milestone);
  // Renames the temporary directory into place and prunes old regular checkpoints.
  void publish(const std::filesystem::path& tmp, int64_t step);

  std::string dir_;
  CheckpointPolicy policy_;
};

// Steps of the complete checkpoints under a run's checkpoint directory, ascending.
std::vector<int64_t> complete_checkpoint_steps(const std::string& checkpoint_dir);

// `path` is a step directory or a run's checkpoint directory (then: `step`, or the latest
// complete one). Returns the step directory; throws std::runtime_error naming the path when none.
std::string find_checkpoint(const std::string& path, std::optional<int64_t> step = std::nullopt);

// What a run of `config` starts from: its own checkpoint directory's latest (or
// training.resume_step) checkpoint, all of it (a continued run); else, with training.load_part
// params or all, that part of the run training.resume_exp_name names
// (checkpoint.resume_checkpoint_dir), as the reference's extension runs; else nothing.
struct RestorePlan {
  std::string step_dir;
  LoadPart part = LoadPart::kNone;
};
RestorePlan restore_plan(const Config& config);

// The resolved configuration saved with a checkpoint (step directory), plus overrides.
Config load_checkpoint_config(const std::string& step_dir, const std::vector<std::string>& overrides = {});

// Copies the checkpoint's weights into `weights` (converted to its dtype and device). Throws
// std::runtime_error naming the file and the first missing, unexpected, mis-shaped or non-finite
// tensor, one of another dtype than the checkpoint declares, and a file whose checksum differs from
// the one state.json records. The loaders of the optimizer and the config check the checksums too.
void load_checkpoint_weights(const std::string& step_dir, ModelWeights& weights);
// The checkpoint's weights as a model of `model` in its parameter dtype on `device` (the above,
// into fresh weights).
ModelWeights checkpoint_weights(const std::string& step_dir, const ModelConfig& model, torch::Device device);

// Restores AdamW moments and step counts; throws when the checkpoint holds none.
void load_checkpoint_optimizer(const std::string& step_dir, OuterOptimizer& optimizer);

// state.json of a step directory. Throws std::runtime_error naming the file and the field for
// anything but the format Checkpointer::save writes (a step or position out of range, a wrong
// type, ...).
TrainState load_checkpoint_state(const std::string& step_dir);
TrainState parse_checkpoint_state(const std::string& text, const std::string& path);

}  // namespace ttt

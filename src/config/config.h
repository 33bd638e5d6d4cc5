// The typed configuration: one struct per group, mirroring the official `ttt/config.py`
// (model.*, training.*, backend.*, checkpoint.*, deploy_paths.*), with the same field names and
// defaults. Values arrive from YAML files under configs/ and command-line overrides through
// config/loader.h; every component reads only the struct of its own group.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "util/strings.h"

namespace ttt {

// The closed choices of the configuration, parsed once when the configuration is loaded. Their
// spellings in YAML and on the command line are listed by enum_spellings<E>() (config.cpp).
enum class TrainMode { kPretrain, kMeta };  // "pretrain" | "meta"
// "self_attention" | "SWA" | the TTT layers of the second seed system, named as ttt-lm-jax names
// them: "ttt_linear" | "ttt_mlp" (the Mamba backbone: shared q/k projection, causal convolutions,
// output gate) and "ttt_linear_base" | "ttt_mlp_base" (the Transformer backbone).
enum class SeqModelingBlock { kSelfAttention, kSlidingWindow, kTttLinear, kTttMlp, kTttLinearBase, kTttMlpBase };
enum class DType { kFloat32, kBFloat16 };         // "fp32" | "bf16" ("float32", "bfloat16" accepted)
enum class LoadPart { kNone, kParams, kAll };     // "none" | "params" | "all"
enum class OptimizerType { kAdamW, kSGD };        // "adamw" | "sgd"
enum class FeedForwardPrime { kSwiGLU };          // "swiglu" (the only one in the reference)
enum class HydraMode { kRun, kMultirun };         // "RUN" | "MULTIRUN"
enum class RopePrecision { kFloat32, kFloat64 };  // "fp32" (the reference's) | "fp64"

// An enum's spellings: the first one of each value is canonical (what to_yaml writes); later
// ones are accepted aliases.
template <typename E>
const std::vector<std::pair<E, std::string>>& enum_spellings();
template <>
const std::vector<std::pair<TrainMode, std::string>>& enum_spellings<TrainMode>();
template <>
const std::vector<std::pair<SeqModelingBlock, std::string>>& enum_spellings<SeqModelingBlock>();
template <>
const std::vector<std::pair<DType, std::string>>& enum_spellings<DType>();
template <>
const std::vector<std::pair<LoadPart, std::string>>& enum_spellings<LoadPart>();
template <>
const std::vector<std::pair<OptimizerType, std::string>>& enum_spellings<OptimizerType>();
template <>
const std::vector<std::pair<FeedForwardPrime, std::string>>& enum_spellings<FeedForwardPrime>();
template <>
const std::vector<std::pair<HydraMode, std::string>>& enum_spellings<HydraMode>();
template <>
const std::vector<std::pair<RopePrecision, std::string>>& enum_spellings<RopePrecision>();

// The canonical spelling of a value ("meta", "SWA", "bf16", ...).
template <typename E>
const std::string& to_string(E value) {
  for (const auto& [v, name] : enum_spellings<E>())
    if (v == value) return name;
  static const std::string unknown = "?";
  return unknown;
}

// A user-facing configuration problem (unknown key, wrong type, missing value, inconsistent
// settings). The message is one line that names the key.
class ConfigError : public std::runtime_error {
 public:
  // Line breaks in the message (from a parser quoting its input, say) become spaces.
  explicit ConfigError(const std::string& message) : std::runtime_error(single_line(message)) {}
};

struct ModelConfig {
  std::string name = "unnamed";
  int64_t vocab_size = 32000;
  int64_t hidden_size = 768;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t mini_batch_size = 1024;
  int64_t sliding_window_size = 1024;
  int64_t seq_len = 131072;  // RoPE table length hint in the reference; not a limit here.
  double rms_norm_eps = 1e-6;
  double initializer_range = 0.02;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  double resid_pdrop = 0.0;
  double embd_pdrop = 0.0;
  double attn_pdrop = 0.0;
  bool tie_word_embeddings = false;
  // Rematerialisation policies of the reference (JAX checkpoint policy names). remat_block =
  // "nothing_saveable" recomputes pretraining's blocks one at a time in the backward pass (any
  // other value keeps their graph); remat_prefix_block does the same for meta training's prefix
  // blocks when training.inner_remat_freq recomputes its chunks (with 0 the whole graph is kept).
  // The rest are parity only (config/schema.cpp flags them).
  std::string remat_block;
  std::string remat_block_bwd;
  std::string remat_prefix_block = "nothing_saveable";
  std::string remat_attention;
  std::string remat_attention_bwd;
  std::string remat_mlp;
  std::string remat_mlp_bwd;
  std::string remat_rms;
  std::string remat_rms_bwd;
  std::string remat_multiple_gd;
  SeqModelingBlock seq_modeling_block = SeqModelingBlock::kSelfAttention;
  double rope_theta = 10000.0;
  // How the RoPE angles pos * theta^(-2i/d) are computed. fp32: as the reference does, position and
  // frequency rounded to float32 and multiplied in float32 (its checkpoints were trained with it;
  // the angle's error grows with the position, ~1e-2 rad at 128K). fp64: in float64, rounded once.
  RopePrecision rope_precision = RopePrecision::kFloat32;
  int64_t output_size = 32000;             // lm_head width when embeddings are not tied
  DType compute_dtype = DType::kBFloat16;  // matmuls
  DType param_dtype = DType::kFloat32;     // stored parameters
  DType state_dtype = DType::kFloat32;     // fast weights of the inner loop
  bool unroll_block_scan = false;          // parity only: XLA scan unrolling in the reference
  bool unroll_inner_scan = false;          // parity only: likewise
  bool force_flash = false;  // parity only: the reference's cuDNN attention kernel and its sharding constraints
  int64_t suffix_len = 0;
  bool prime = false;
  bool qk_norm = true;
  bool pre_norm = true;
  bool post_norm = true;
  FeedForwardPrime feed_forward_prime = FeedForwardPrime::kSwiGLU;
  // TTT-layer models (seq_modeling_block ttt_*; ttt-lm-jax's ModelConfig). The inner learning rate
  // base, and its warm-up over the outer steps (on when both are > 0): from init to base.
  double ttt_base_lr = 1.0;
  double ttt_base_lr_init = -1.0;
  int64_t ttt_base_lr_warmup = -1;
  // Before each TTT layer: h + causal_conv(RMSNorm(h)), a depthwise convolution of conv_width taps
  // (also the width of the Mamba backbone's q/k convolutions).
  bool pre_conv = false;
  int64_t conv_width = 4;
  // Training recomputes the TTT layer's inner loop in groups of this many mini-batches in the
  // backward pass, keeping only the inner weights at group boundaries (0: keeps the whole graph).
  int64_t remat_mini_batch_group_size = 4;
};

// Whether the sequence-modelling block is a TTT layer (ttt_linear, ttt_mlp and their _base forms).
inline bool is_ttt_layer(SeqModelingBlock block) {
  return block == SeqModelingBlock::kTttLinear || block == SeqModelingBlock::kTttMlp ||
         block == SeqModelingBlock::kTttLinearBase || block == SeqModelingBlock::kTttMlpBase;
}
// Of a TTT layer: whether its inner model is the MLP, and whether it has the Mamba backbone.
inline bool is_ttt_mlp(SeqModelingBlock block) {
  return block == SeqModelingBlock::kTttMlp || block == SeqModelingBlock::kTttMlpBase;
}
inline bool is_ttt_mamba_backbone(SeqModelingBlock block) {
  return block == SeqModelingBlock::kTttLinear || block == SeqModelingBlock::kTttMlp;
}

struct OptimizerConfig {
  OptimizerType optimizer_type = OptimizerType::kAdamW;
  double init_lr = 0.0;
  double end_lr = 1e-5;
  double lr = 0.01;
  int64_t lr_warmup_steps = 2000;
  int64_t lr_decay_steps = 500000;
  double b1 = 0.9;
  double b2 = 0.95;
  double clip_gradient = 1.0;
  double weight_decay = 0.1;
  bool bf16_momentum = false;
  bool emb_wd = true;

  static OptimizerConfig adamw_defaults() { return OptimizerConfig{}; }
  static OptimizerConfig sgd_defaults() {
    OptimizerConfig c;
    c.optimizer_type = OptimizerType::kSGD;
    c.lr = 0.01;
    c.clip_gradient = 0.0;
    return c;
  }
};

struct TrainingConfig {
  bool log_wandb = false;  // the reference defaults to true; W&B is not available here (see docs)
  std::optional<std::string> wandb_entity;
  std::optional<std::string> wandb_project;
  std::optional<std::string> wandb_key;
  int64_t model_seed = 0;
  int64_t data_seed = 0;
  LoadPart load_part = LoadPart::kNone;
  int64_t total_steps = 2500;
  int64_t break_step = -1;
  int64_t save_milestone_freq = 2500;
  std::optional<std::string> dataset_path;
  std::optional<std::string> dataset_name;
  std::string tokenizer_name = "meta-llama/Llama-2-7b-hf";
  int64_t seq_length = 1024;
  int64_t global_batch_size = 8;
  int64_t accum_steps = 1;
  int64_t loader_workers = 32;
  bool dummy_dataset = false;
  std::string checkpoint_path = "./checkpoints";
  std::string exp_dir = "./experiments";
  std::string exp_folder = "demo";
  std::optional<std::string> exp_name;
  std::string resume_exp_name;
  std::optional<int64_t> resume_step;
  bool eval_mode = false;
  TrainMode train_mode = TrainMode::kPretrain;
  std::string data_split = "train";
  std::string eval_split = "val";
  int64_t inner_remat_freq = 1;  // meta mode: recompute groups of this many chunks in backward; 0 = keep the graph
  OptimizerConfig optimizer_outer = OptimizerConfig::adamw_defaults();
  OptimizerConfig optimizer_inner = OptimizerConfig::sgd_defaults();
  std::vector<std::string> spec_outer{"**"};
  std::vector<std::string> spec_inner{"**"};
  std::optional<int64_t> n_data_parallel;
  int64_t n_state_parallel = 1;
  int64_t ilr_warmup_steps = 0;
  double ilr_init = 1.0;
  int64_t eval_batch_size = 8;
  // Ours: replace copy_spans spans of copy_span_length tokens in each training sequence with copies
  // of earlier spans of the same sequence (data/copy_spans.h), so that a small model learns to copy
  // from context. 0, the default, trains on the text as it is. Evaluation text is never changed.
  // copy_span_random: each source span is first filled with tokens drawn uniformly from the
  // vocabulary, so that its copy can be predicted by copying alone.
  int64_t copy_spans = 0;
  int64_t copy_span_length = 32;
  bool copy_span_random = false;
};

// `backend.*`: the reference's JaxDistributedConfig plus what a LibTorch runtime needs.
struct BackendConfig {
  bool distributed = false;
  std::optional<std::string> coordinator_address;
  std::optional<int64_t> num_processes;
  std::optional<int64_t> process_id;
  std::optional<std::string> local_device_ids;
  std::optional<std::string> backend;  // cpu | gpu (reference naming)
  std::optional<int64_t> num_devices;
  std::optional<std::string> compilation_cache_dir = std::string("/tmp/jax_cache");
  // Ours:
  std::string device = "cpu";  // cpu | cuda | cuda:N
  int64_t num_threads = 0;     // intra-op CPU threads; 0 = LibTorch's default
  // Distributed runs (dist/): a rendezvous, collective or lost peer not resolved within this many
  // seconds ends the run with an error (the official NCCL default is 30 minutes).
  int64_t dist_timeout_s = 300;
  // Gradients are all-reduced in flat buckets of about this many MiB, each started as soon as its
  // gradients are final in the backward pass (overlap_grad_reduce) or all after it.
  int64_t bucket_size_mb = 25;
  bool overlap_grad_reduce = true;
  // Bitwise-reproducible runs on CUDA: LibTorch's deterministic algorithms, cuBLAS's fixed
  // workspace, and the composite attention (the fused kernels' backward accumulates with atomics),
  // at some cost in speed and memory. CPU runs are reproducible either way.
  bool deterministic = false;
};

struct CheckpointConfig {
  // dtype of the saved weights. The reference declares "bf16" but never uses it; here it is
  // applied, so the default is fp32 (exact resume). bf16 halves checkpoint size but a run resumed
  // from it is not bitwise identical to an uninterrupted one.
  DType float_dtype = DType::kFloat32;
  bool save_optimizer_state = true;  // false: weights only (resuming then needs load_part=params)
  std::optional<std::string> checkpoint_dir;
  std::optional<std::string> resume_checkpoint_dir;
  // Ours: a regular checkpoint every save_freq steps (0: none), of which the last keep_last are
  // kept; milestones (training.save_milestone_freq) and the final step are always saved and kept.
  int64_t save_freq = 100;
  int64_t keep_last = 3;
};

struct DeployPathsConfig {
  std::map<std::string, std::optional<std::string>> data;  // dataset_name -> path
  std::optional<std::string> checkpoint;
};

// `hydra.launcher.*`: the official submitit Slurm launcher's settings (configs/deploy/submitit.yaml),
// same names and defaults. In hydra.mode=MULTIRUN, `ttt train` turns them into an sbatch script
// and submits it (dist/slurm_job.h) instead of training. Here every process drives one device:
// a GPU job runs gpus_per_node processes per node, a CPU job tasks_per_node.
struct LauncherConfig {
  std::optional<std::string> name;  // the job's name; unset: training.exp_name
  std::optional<std::string> partition;
  std::optional<int64_t> nodes = 1;
  int64_t tasks_per_node = 1;
  std::optional<int64_t> gpus_per_node;
  std::optional<int64_t> cpus_per_task;
  std::optional<int64_t> mem_gb;  // memory per node
  int64_t timeout_min = 60;
  // SIGUSR1 reaches every process this many seconds before the time limit: the run saves a
  // checkpoint and the job requeues itself, at most max_num_timeout times.
  int64_t signal_delay_s = 120;
  int64_t max_num_timeout = 0;
  bool stderr_to_stdout = false;
  std::optional<std::string> qos;
  std::optional<std::string> account;
  std::optional<std::string> comment;
  std::optional<std::string> constraint;
  std::optional<std::string> exclude;
  std::optional<std::string> gres;
  std::optional<int64_t> cpus_per_gpu;
  std::optional<int64_t> gpus_per_task;
  std::optional<std::string> mem_per_gpu;
  std::optional<std::string> mem_per_cpu;
  std::vector<std::string> setup;      // shell lines run by the batch script before srun
  std::vector<std::string> srun_args;  // extra srun options
  std::optional<std::string> slurm_python;
  int64_t array_parallelism = 256;
};

// `hydra.*`: Hydra's run mode and the launcher; the rest of Hydra's own settings (logging, output
// directories, plugin targets) are ignored in config files.
struct HydraConfig {
  HydraMode mode = HydraMode::kRun;
  LauncherConfig launcher;
};

struct Config {
  TrainingConfig training;
  ModelConfig model;
  BackendConfig backend;
  CheckpointConfig checkpoint;
  DeployPathsConfig deploy_paths;
  HydraConfig hydra;
};

// Returns the value of an optional field or throws ConfigError naming the key.
const std::string& require(const std::optional<std::string>& value, const std::string& key);

}  // namespace ttt

// A flat list of small consistency checks; each throws one line that names the key(s).
#include "config/validate.h"

#include <initializer_list>
#include <string>
#include <utility>

#include "util/strings.h"

namespace ttt {
namespace {

void check(bool ok, const std::string& message) {
  if (!ok) throw ConfigError(message);
}

void check_one_of(const std::string& key, const std::string& value, std::initializer_list<const char*> allowed) {
  std::vector<std::string> names;
  for (const char* name : allowed) {
    if (value == name) return;
    names.emplace_back(name);
  }
  throw ConfigError(key + ": unknown value '" + value + "' (allowed: " + join(names, ", ") + ")");
}

void check_positive(std::initializer_list<std::pair<const char*, int64_t>> sizes) {
  for (const auto& [key, value] : sizes) {
    check(value > 0, std::string(key) + " must be positive, got " + std::to_string(value));
  }
}

bool is_device(const std::string& device) {
  if (device == "cpu" || device == "cuda") return true;
  if (!starts_with(device, "cuda:") || device.size() == 5) return false;
  for (std::size_t i = 5; i < device.size(); ++i) {
    if (device[i] < '0' || device[i] > '9') return false;
  }
  return true;
}

}  // namespace

void validate_config(const Config& config) {
  const ModelConfig& model = config.model;
  const TrainingConfig& training = config.training;

  check_positive({{"model.vocab_size", model.vocab_size},
                  {"model.hidden_size", model.hidden_size},
                  {"model.intermediate_size", model.intermediate_size},
                  {"model.num_hidden_layers", model.num_hidden_layers},
                  {"model.num_attention_heads", model.num_attention_heads},
                  {"model.mini_batch_size", model.mini_batch_size},
                  {"model.sliding_window_size", model.sliding_window_size},
                  {"model.output_size", model.output_size},
                  {"training.seq_length", training.seq_length},
                  {"training.global_batch_size", training.global_batch_size},
                  {"training.accum_steps", training.accum_steps},
                  {"training.total_steps", training.total_steps},
                  {"training.eval_batch_size", training.eval_batch_size}});
  check(config.checkpoint.save_freq >= 0, "checkpoint.save_freq must be >= 0 (0: no regular checkpoints)");
  check(config.checkpoint.keep_last >= 1, "checkpoint.keep_last must be >= 1");
  check(training.inner_remat_freq >= 0,
        "training.inner_remat_freq must be >= 0 (0: no recomputation), got " + std::to_string(training.inner_remat_freq));
  if (training.n_data_parallel) {
    check_positive({{"training.n_data_parallel", *training.n_data_parallel}});
  }

  check_one_of("model.seq_modeling_block", model.seq_modeling_block, {"self_attention", "SWA"});
  check_one_of("training.train_mode", training.train_mode, {"pretrain", "meta"});
  check_one_of("training.load_part", training.load_part, {"none", "params", "all"});
  check_one_of("training.optimizer_outer.optimizer_type", training.optimizer_outer.optimizer_type, {"adamw", "sgd"});
  check_one_of("training.optimizer_inner.optimizer_type", training.optimizer_inner.optimizer_type, {"adamw", "sgd"});
  check_one_of("model.compute_dtype", model.compute_dtype, {"fp32", "bf16"});
  check_one_of("model.param_dtype", model.param_dtype, {"fp32", "bf16"});
  check_one_of("model.state_dtype", model.state_dtype, {"fp32", "bf16"});
  check_one_of("checkpoint.float_dtype", config.checkpoint.float_dtype, {"fp32", "bf16"});
  check_one_of("model.feed_forward_prime", model.feed_forward_prime, {"swiglu"});
  check(is_device(config.backend.device),
        "backend.device: unknown device '" + config.backend.device + "' (allowed: cpu, cuda, cuda:N)");

  check(training.seq_length % model.mini_batch_size == 0,
        "training.seq_length (" + std::to_string(training.seq_length) + ") must be a multiple of model.mini_batch_size (" +
            std::to_string(model.mini_batch_size) + ")");
  check(model.suffix_len >= 0 && model.suffix_len <= model.num_hidden_layers,
        "model.suffix_len (" + std::to_string(model.suffix_len) + ") must be between 0 and model.num_hidden_layers (" +
            std::to_string(model.num_hidden_layers) + ")");
  check(!(training.train_mode == "meta" && model.sliding_window_size < model.mini_batch_size),
        "model.sliding_window_size (" + std::to_string(model.sliding_window_size) +
            ") must be at least model.mini_batch_size (" + std::to_string(model.mini_batch_size) +
            ") when training.train_mode is meta");
  check(model.hidden_size % model.num_attention_heads == 0,
        "model.hidden_size (" + std::to_string(model.hidden_size) + ") must be divisible by model.num_attention_heads (" +
            std::to_string(model.num_attention_heads) + ")");
  check((model.hidden_size / model.num_attention_heads) % 2 == 0,
        "model.hidden_size / model.num_attention_heads (head dim " +
            std::to_string(model.hidden_size / model.num_attention_heads) + ") must be even: RoPE rotates pairs");
  check(!(model.prime && model.suffix_len == 0),
        "model.prime is true but model.suffix_len is 0: prime MLPs live in the suffix blocks");
  check(!(training.train_mode == "meta" && model.seq_modeling_block != "SWA"),
        "training.train_mode is meta but model.seq_modeling_block is " + model.seq_modeling_block +
            ": the inner loop reads the sequence in chunks through a sliding-window KV cache (use SWA)");
  check(!(training.train_mode == "meta" && model.suffix_len == 0),
        "training.train_mode is meta but model.suffix_len is 0: test-time training needs suffix blocks");
  check(training.global_batch_size % training.accum_steps == 0,
        "training.global_batch_size (" + std::to_string(training.global_batch_size) +
            ") must be divisible by training.accum_steps (" + std::to_string(training.accum_steps) + ")");
  for (const auto& [key, rate] : {std::pair<const char*, double>{"model.resid_pdrop", model.resid_pdrop},
                                  {"model.embd_pdrop", model.embd_pdrop},
                                  {"model.attn_pdrop", model.attn_pdrop}}) {
    check(rate == 0.0, std::string(key) + " = " + std::to_string(rate) +
                           ": dropout is not supported (every official config uses 0)");
  }
  check(!training.log_wandb,
        "training.log_wandb: Weights & Biases is not available in this implementation; set it to false "
        "(metrics go to metrics.jsonl in the run directory)");
  check(model.bos_token_id >= 0 && model.bos_token_id < model.vocab_size,
        "model.bos_token_id (" + std::to_string(model.bos_token_id) + ") is outside the vocabulary (model.vocab_size " +
            std::to_string(model.vocab_size) + ")");
  check(model.eos_token_id >= 0 && model.eos_token_id < model.vocab_size,
        "model.eos_token_id (" + std::to_string(model.eos_token_id) + ") is outside the vocabulary (model.vocab_size " +
            std::to_string(model.vocab_size) + ")");
  check(training.n_state_parallel == 1,
        "training.n_state_parallel = " + std::to_string(training.n_state_parallel) +
            ": sequence/state sharding is not supported (one process holds the whole sequence)");
  check(!config.backend.distributed && config.backend.num_processes.value_or(1) <= 1,
        "backend.distributed / backend.num_processes: multi-process training is not available in this build "
        "yet; run one process (the loader already shards by rank for when it is)");
  check(!(training.train_mode == "meta" && training.optimizer_inner.optimizer_type != "sgd"),
        "training.optimizer_inner.optimizer_type is " + training.optimizer_inner.optimizer_type +
            ": the inner loop takes plain SGD steps (as every official config does); use sgd");
}

}  // namespace ttt

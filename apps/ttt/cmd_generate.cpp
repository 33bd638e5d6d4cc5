// `ttt generate`: reads a prompt into a checkpoint's model (E2E models learn from it chunk by
// chunk, as in evaluation) and streams sampled text to stdout. --save-state / --load-state keep
// the adapted state, so a long document is read once and queried many times.
#include <chrono>
#include <iostream>

#include "commands.h"
#include "infer/decoder.h"
#include "infer/generate.h"
#include "infer/model_tokenizer.h"
#include "infer/state_file.h"
#include "model/layers.h"
#include "train/checkpoint.h"
#include "util/file_io.h"
#include "util/runtime.h"

namespace ttt::cli {
namespace {

struct GenerateArgs {
  std::string checkpoint, tokenizer, prompt, prompt_file, save_state, load_state;
  bool prompt_given = false;
  int64_t max_new_tokens = 256;
  uint64_t seed = 0;
  SamplingOptions sampling;
  bool no_ttt = false;
  std::vector<std::string> overrides;
};

std::string read_prompt(const GenerateArgs& args) {
  return args.prompt_given ? args.prompt : read_file_or_stdin(args.prompt_file);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int run_generate(const GenerateArgs& args) {
  check_sampling_options(args.sampling);
  if (args.max_new_tokens < 0) throw std::invalid_argument("--max-new-tokens must be >= 0");
  const std::string step_dir = find_checkpoint(args.checkpoint);
  const Config config = load_checkpoint_config(step_dir, args.overrides);
  const torch::Device device = setup_runtime(config.backend);
  torch::NoGradGuard no_grad;  // the decoder turns gradients on for the inner steps only

  const auto weights = checkpoint_weights(step_dir, config.model, device);
  const auto tokenizer = load_model_tokenizer(args.tokenizer, config);

  const ModelConfig& cfg = config.model;
  const auto ttt = TttOptions::for_inference(config, /*test_time_training=*/!args.no_ttt);
  DecodeState state = args.load_state.empty() ? start_decoding(cfg, ttt, weights)
                                              : load_decode_state(args.load_state, cfg, ttt, weights);
  std::vector<int64_t> ids;
  // A fresh state starts a document (BOS); a loaded one continues its document.
  if (args.load_state.empty()) ids.push_back(tokenizer->bos_id());
  for (int32_t id : tokenizer->encode(read_prompt(args))) ids.push_back(id);
  if (ids.empty() && !state.last_logits.defined()) throw std::runtime_error("the prompt is empty");

  const auto prefill_start = std::chrono::steady_clock::now();
  if (!ids.empty()) read_tokens(cfg, ttt, weights, state, torch::tensor(ids, torch::kInt64).view({1, -1}).to(device));
  const double prefill_seconds = seconds_since(prefill_start);
  if (!args.save_state.empty()) save_decode_state(args.save_state, cfg, ttt, weights, state);

  GenerateOptions options;
  options.sampling = args.sampling;
  options.max_new_tokens = args.max_new_tokens;
  options.seed = args.seed;
  options.eos_id = tokenizer->eos_id();
  Utf8Stream stream;
  const auto decode_start = std::chrono::steady_clock::now();
  const auto generated = generate_tokens(cfg, ttt, weights, state, options, [&](int64_t token) {
    if (token == options.eos_id) return;
    std::cout << stream.push(tokenizer->decode({static_cast<int32_t>(token)})) << std::flush;
  });
  std::cout << stream.finish() << std::flush;
  const double decode_seconds = seconds_since(decode_start);
  std::cerr << "\n[" << ids.size() << " prompt tokens in " << prefill_seconds << " s; " << generated.size()
            << " generated in " << decode_seconds << " s; position " << state.position
            << (is_ttt_layer(cfg.seq_modeling_block) ? "; TTT layers (" + to_string(cfg.seq_modeling_block) + ")"
                : ttt.enabled                        ? std::string("; test-time training on")
                                                     : std::string("; test-time training off"))
            << "]" << std::endl;
  return 0;
}

}  // namespace

Run add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate",
                                 "Generate text from a checkpoint (E2E models learn from the prompt as they read it)");
  auto args = std::make_shared<GenerateArgs>();
  cmd->add_option("--checkpoint", args->checkpoint,
                  "A checkpoint step directory or a run's checkpoint directory (latest step)")
      ->required();
  cmd->add_option("--tokenizer", args->tokenizer,
                  "byte, or a tokenizer.json (or a directory holding one); default: the run's training.tokenizer_name");
  auto* prompt = cmd->add_option("--prompt", args->prompt, "The prompt text (BOS is prepended)");
  auto* prompt_file = cmd->add_option("--prompt-file", args->prompt_file,
                                      "Read the prompt from this file ('-': stdin; default: stdin)");
  prompt->excludes(prompt_file);
  cmd->add_option("--max-new-tokens", args->max_new_tokens, "Stop after this many tokens (or at EOS)")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Sampling seed: the same seed reproduces the text")->capture_default_str();
  cmd->add_option("--temperature", args->sampling.temperature, "Softmax temperature; 0 = greedy")
      ->capture_default_str();
  cmd->add_option("--top-k", args->sampling.top_k, "Sample among the k most likely tokens; 0 = all")
      ->capture_default_str();
  cmd->add_option("--top-p", args->sampling.top_p, "Nucleus sampling: smallest set with this much mass; 1 = all")
      ->capture_default_str();
  cmd->add_option("--repetition-penalty", args->sampling.repetition_penalty,
                  "CTRL-style penalty (> 1) on tokens already seen; 1 = off")
      ->capture_default_str();
  cmd->add_flag("--no-ttt", args->no_ttt, "No test-time training: the E2E model keeps its initial fast weights");
  cmd->add_option("--save-state", args->save_state,
                  "After reading the prompt, write the adapted state (fast weights, KV caches, position) to this file");
  cmd->add_option("--load-state", args->load_state,
                  "Resume from a state written by --save-state for the same model; the prompt continues its text");
  add_overrides_option(*cmd, args->overrides);
  return [args, prompt]() {
    args->prompt_given = prompt->count() > 0;
    return run_generate(*args);
  };
}

}  // namespace ttt::cli

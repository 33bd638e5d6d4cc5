// `ttt eval`: evaluates a checkpoint. The default task (loss) runs the eval split (test-time
// training on for meta models) and writes eval.json, eval_nll_by_position.csv,
// eval_nll_binned.csv and loss_by_position.svg into the run directory; `--task niah` runs the
// needle-in-a-haystack suite (infer/needle.h) and writes niah.json, niah.csv, niah_accuracy.svg;
// `--task recall` runs the repeated-passage task (infer/recall.h) and writes recall.json, recall.csv.
#include <iostream>
#include <optional>

#include "commands.h"
#include "config/loader.h"
#include "data/dataset.h"
#include "infer/model_tokenizer.h"
#include "infer/needle_report.h"
#include "infer/recall_report.h"
#include "train/checkpoint.h"
#include "train/evaluator.h"
#include "train/run_directory.h"
#include "util/file_io.h"
#include "util/runtime.h"

namespace ttt::cli {
namespace {

struct EvalArgs {
  std::vector<std::string> overrides;
  std::string checkpoint, task = "loss";
  int64_t step = -1;
  // The needle suite and the recall task (without --trials, the task's default).
  NeedleOptions needle{{}, {0, 0.25, 0.5, 0.75, 1}};
  RecallOptions recall;
  std::optional<int64_t> trials;
  std::string haystack, tokenizer, output;
  bool no_ttt = false;
};

// The checkpoint step directory and its configuration with the overrides on top.
std::pair<std::string, Config> resolve(const EvalArgs& args) {
  if (!args.checkpoint.empty()) {
    const std::string step_dir =
        find_checkpoint(args.checkpoint, args.step >= 0 ? std::optional<int64_t>(args.step) : std::nullopt);
    return {step_dir, load_checkpoint_config(step_dir, args.overrides)};
  }
  Config config = load_config(args.overrides);
  if (args.step >= 0) config.training.resume_step = args.step;
  return {checkpoint_to_evaluate(config), config};
}

// Lengths of the needle prompts by default: a quarter, a half and all of the evaluation context.
std::vector<int64_t> default_lengths(int64_t seq_length) {
  std::vector<int64_t> lengths;
  for (int64_t length : {seq_length / 4, seq_length / 2, seq_length})
    if (length >= 128 && (lengths.empty() || lengths.back() != length)) lengths.push_back(length);
  if (lengths.empty()) lengths.push_back(seq_length);
  return lengths;
}

// The text prompts are drawn from: --haystack's file, tokenized, or the run's eval split.
std::unique_ptr<TokenSource> prompt_text(const EvalArgs& args, const Config& config, const Tokenizer& tokenizer) {
  if (args.haystack.empty()) return open_split(config, config.training.eval_split);
  std::vector<int64_t> ids;
  for (int32_t id : tokenizer.encode(read_file(args.haystack))) ids.push_back(id);
  return std::make_unique<VectorTokenSource>(std::move(ids), "text file " + args.haystack);
}

// What niah.json and recall.json record about the model and its run.
nlohmann::json model_about(const std::string& task, const std::string& step_dir, const Config& config,
                           const TttOptions& ttt, const Tokenizer& tokenizer, const TokenSource& text) {
  const bool windowed = config.model.seq_modeling_block == SeqModelingBlock::kSlidingWindow;
  return {{"task", task},
          {"checkpoint", step_dir},
          {"step", load_checkpoint_state(step_dir).step},
          {"seq_modeling_block", to_string(config.model.seq_modeling_block)},
          {"sliding_window_size", windowed ? nlohmann::json(config.model.sliding_window_size) : nlohmann::json()},
          {"test_time_training", ttt.enabled},
          {"tokenizer", tokenizer.name()},
          {"haystack", text.describe()}};
}

// What the prompt tasks (niah, recall) read, loaded once their options have been checked.
struct PromptModel {
  ModelWeights weights;
  std::unique_ptr<Tokenizer> tokenizer;
  TttOptions ttt;
  std::unique_ptr<TokenSource> text;
};

PromptModel load_prompt_model(const EvalArgs& args, const std::string& step_dir, const Config& config) {
  const torch::Device device = setup_runtime(config.backend);
  PromptModel m;
  m.weights = checkpoint_weights(step_dir, config.model, device);
  m.tokenizer = load_model_tokenizer(args.tokenizer, config);
  m.ttt = TttOptions::for_inference(config, /*test_time_training=*/!args.no_ttt);
  m.text = prompt_text(args, config, *m.tokenizer);
  return m;
}

int run_niah(EvalArgs args) {
  auto [step_dir, config] = resolve(args);
  if (args.needle.lengths.empty()) args.needle.lengths = default_lengths(config.training.seq_length);
  if (args.trials) args.needle.trials = *args.trials;
  check_needle_options(args.needle);
  const auto m = load_prompt_model(args, step_dir, config);
  std::cout << "niah: " << step_dir << ", haystack " << m.text->describe() << ", " << args.needle.trials
            << " trials per cell" << std::endl;
  const auto cells =
      run_needle_suite(config.model, m.ttt, m.weights, *m.tokenizer, *m.text, args.needle, [](const NeedleCell& cell) {
        std::cout << "niah: length " << cell.length << " depth " << cell.depth << ": accuracy " << cell.accuracy
                  << ", answer NLL " << cell.answer_nll << ", needle " << cell.distance
                  << " tokens back (window: " << cell.window << ") [" << cell.seconds << " s]" << std::endl;
      });
  const auto out_dir = args.output.empty() ? run_directory(config).string() : args.output;
  auto about = model_about("niah", step_dir, config, m.ttt, *m.tokenizer, *m.text);
  about.update({{"trials", args.needle.trials},
                {"key_digits", args.needle.key_digits},
                {"key_kind", args.needle.key_kind},
                {"needle_form", args.needle.needle_form},
                {"seed", args.needle.seed}});
  write_needle_outputs(out_dir, cells, about,
                       "Pass-key retrieval accuracy: " + run_directory(config).filename().string());
  std::cout << "\n"
            << needle_table(cells, "accuracy", [](const NeedleCell& c) { return c.accuracy; }) << "\n"
            << needle_table(cells, "answer NLL", [](const NeedleCell& c) { return c.answer_nll; }) << "\n"
            << "-> " << out_dir << "/niah.json, niah.csv, niah_accuracy.svg" << std::endl;
  return 0;
}

int run_recall(EvalArgs args) {
  auto [step_dir, config] = resolve(args);
  if (args.trials) args.recall.trials = *args.trials;
  check_recall_options(args.recall);
  const auto m = load_prompt_model(args, step_dir, config);
  std::cout << "recall: " << step_dir << ", text " << m.text->describe() << ", " << args.recall.trials
            << " passages of " << args.recall.passage << " tokens per gap" << std::endl;
  const auto cells = run_recall_suite(
      config.model, m.ttt, m.weights, m.tokenizer->bos_id(), *m.text, args.recall, [](const RecallCell& cell) {
        std::cout << "recall: gap " << cell.gap << " (" << cell.distance << " tokens back, window: " << cell.window
                  << "): repeat NLL " << cell.repeat_nll << ", control NLL " << cell.control_nll << " [" << cell.seconds
                  << " s]" << std::endl;
      });
  const auto out_dir = args.output.empty() ? run_directory(config).string() : args.output;
  auto about = model_about("recall", step_dir, config, m.ttt, *m.tokenizer, *m.text);
  about.update({{"trials", args.recall.trials}, {"passage", args.recall.passage}});
  write_recall_outputs(out_dir, cells, about);
  std::cout << "\n" << recall_table(cells) << "-> " << out_dir << "/recall.json, recall.csv" << std::endl;
  return 0;
}

}  // namespace

Run add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval",
      "Evaluate a checkpoint: loss by token position on the eval split, the needle-in-a-haystack suite, or the "
      "recall of a passage read earlier");
  auto args = std::make_shared<EvalArgs>();
  cmd->add_option("--checkpoint", args->checkpoint,
                  "A checkpoint step directory or a run's checkpoint directory (latest step); its config is used, "
                  "with the overrides on top. Without it: the latest checkpoint of the configured run");
  cmd->add_option("--step", args->step, "The step to evaluate (default: the latest complete checkpoint)");
  cmd->add_option("--task", args->task,
                  "loss: mean loss and loss by position on the eval split; niah: pass-key retrieval in haystacks of "
                  "real text; recall: a passage read twice, against the passage followed by fresh text")
      ->check(CLI::IsMember({"loss", "niah", "recall"}))
      ->capture_default_str();
  cmd->add_option("--lengths", args->needle.lengths,
                  "niah: prompt lengths in tokens (default: a quarter, a half and all of training.seq_length)")
      ->delimiter(',');
  cmd->add_option("--depths", args->needle.depths, "niah: needle depths in the haystack, 0 (start) to 1 (end)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option_function<int64_t>(
      "--trials", [args](const int64_t& n) { args->trials = n; },
      "niah: prompts per length and depth, each its own key and haystack (default 4); recall: passages "
      "per gap (default 16)");
  cmd->add_option("--key-digits", args->needle.key_digits, "niah: characters of the pass key")->capture_default_str();
  cmd->add_option("--key-kind", args->needle.key_kind,
                  "niah: digits (a number, as in the paper) or letters (lowercase a-z, for models that copy text but "
                  "have seen few digits)")
      ->check(CLI::IsMember({"digits", "letters"}))
      ->capture_default_str();
  cmd->add_option("--needle-form", args->needle.needle_form,
                  "niah: repeated (the classic needle: 'The pass key is K. Remember it. K is the pass key.') or "
                  "single (without the second sentence)")
      ->check(CLI::IsMember({"repeated", "single"}))
      ->capture_default_str();
  cmd->add_option("--seed", args->needle.seed, "niah: seed of the pass keys")->capture_default_str();
  cmd->add_option("--passage", args->recall.passage, "recall: tokens of a passage")->capture_default_str();
  cmd->add_option("--gaps", args->recall.gaps,
                  "recall: tokens of text between the passage's two readings, one result each (its copy lies passage "
                  "+ gap tokens back)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--haystack", args->haystack,
                  "niah, recall: a text file to draw the prompts' text from (default: the run's eval split)");
  cmd->add_option(
      "--tokenizer", args->tokenizer,
      "niah, recall: byte, or a tokenizer.json (or a directory holding one); default: training.tokenizer_name");
  cmd->add_flag("--no-ttt", args->no_ttt,
                "niah, recall: no test-time training (E2E models keep their initial fast weights)");
  cmd->add_option("--output", args->output, "niah, recall: directory for the outputs (default: the run directory)");
  add_overrides_option(*cmd, args->overrides);
  return [args]() {
    if (args->task == "niah") return run_niah(*args);
    if (args->task == "recall") return run_recall(*args);
    auto [step_dir, config] = resolve(*args);
    config.training.eval_mode = true;
    evaluate_checkpoint(config, step_dir);
    return 0;
  };
}

}  // namespace ttt::cli

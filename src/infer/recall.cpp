#include "infer/recall.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "infer/decoder.h"
#include "infer/target_scores.h"

namespace ttt {
void check_recall_options(const RecallOptions& options) {
  if (options.passage < 2)
    throw std::invalid_argument("recall passage must be >= 2 tokens, not " + std::to_string(options.passage));
  if (options.gaps.empty()) throw std::invalid_argument("no recall gaps given");
  for (int64_t gap : options.gaps)
    if (gap < 0) throw std::invalid_argument("recall gap " + std::to_string(gap) + " is negative");
  if (options.trials < 1)
    throw std::invalid_argument("recall trials must be >= 1, not " + std::to_string(options.trials));
}

RecallPrompts build_recall_prompts(const std::vector<int64_t>& text, int64_t bos_id, int64_t passage, int64_t gap) {
  if (static_cast<int64_t>(text.size()) < 2 * passage + gap)
    throw std::invalid_argument("recall text of " + std::to_string(text.size()) + " tokens is shorter than 2 x " +
                                std::to_string(passage) + " + " + std::to_string(gap));
  RecallPrompts prompts;
  prompts.repeat.push_back(bos_id);
  prompts.repeat.insert(prompts.repeat.end(), text.begin(), text.begin() + passage + gap);
  prompts.control = prompts.repeat;
  prompts.repeat.insert(prompts.repeat.end(), text.begin(), text.begin() + passage);
  prompts.control.insert(prompts.control.end(), text.begin() + passage + gap, text.begin() + 2 * passage + gap);
  return prompts;
}

RecallScore score_recall_prompts(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                                 const RecallPrompts& prompts, int64_t passage) {
  const auto n = static_cast<int64_t>(prompts.repeat.size());
  const int64_t second = n - passage;  // index of the second passage's first token
  if (passage < 2 || static_cast<int64_t>(prompts.control.size()) != n || second < 1 + passage ||
      !std::equal(prompts.repeat.begin(), prompts.repeat.begin() + second, prompts.control.begin()))
    throw std::invalid_argument("recall prompts must share BOS, the passage and the gap before their last " +
                                std::to_string(passage) + " tokens (a passage of at least 2)");
  torch::NoGradGuard no_grad;  // the decoder turns gradients on for the inner steps only
  const torch::Device device = w.wte().device();
  // BOS, P and the gap, read once: the logits at 1 .. L - 1 predict P's tokens 2..L.
  DecodeState state = start_decoding(cfg, ttt, w);
  const auto head = read_tokens(cfg, ttt, w, state, prompt_ids(prompts.repeat, 0, 1 + passage, device),
                                /*all_logits=*/true);
  const auto first = score_targets(head.slice(1, 1, passage), prompt_ids(prompts.repeat, 2, 1 + passage, device));
  if (second > 1 + passage) read_tokens(cfg, ttt, w, state, prompt_ids(prompts.repeat, 1 + passage, second, device));
  // Each prompt's second passage but its last token, from the state after the gap (the repeat's
  // from a fork of it), with the logits predicting its tokens 2..L.
  auto score_second = [&](DecodeState& from, const std::vector<int64_t>& ids) {
    const auto tail = read_tokens(cfg, ttt, w, from, prompt_ids(ids, second, n - 1, device), /*all_logits=*/true);
    return score_targets(tail, prompt_ids(ids, second + 1, n, device));
  };
  DecodeState fork = fork_decoding(state);
  const auto repeat = score_second(fork, prompts.repeat);
  const auto control = score_second(state, prompts.control);
  RecallScore score;
  score.tokens = passage - 1;
  score.first_nll = first.nll;
  score.repeat_nll = repeat.nll;
  score.control_nll = control.nll;
  score.repeat_correct = repeat.correct();
  score.control_correct = control.correct();
  return score;
}

std::vector<RecallCell> run_recall_suite(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                                         int64_t bos_id, TokenSource& text, const RecallOptions& options,
                                         const std::function<void(const RecallCell&)>& on_cell) {
  check_recall_options(options);
  const int64_t longest = 2 * options.passage + *std::max_element(options.gaps.begin(), options.gaps.end());
  if (text.size() < longest)
    throw std::invalid_argument("the recall text (" + text.describe() + ") holds " + std::to_string(text.size()) +
                                " tokens; passages of " + std::to_string(options.passage) + " with gaps need " +
                                std::to_string(longest));
  std::vector<std::vector<int64_t>> texts;
  for (int64_t t = 0; t < options.trials; ++t) {
    std::vector<int64_t> tokens(longest);
    text.read(t * (text.size() - longest) / options.trials, longest, tokens.data());
    texts.push_back(std::move(tokens));
  }
  const bool windowed = cfg.seq_modeling_block == SeqModelingBlock::kSlidingWindow;
  std::vector<RecallCell> cells;
  for (int64_t gap : options.gaps) {
    const auto start = std::chrono::steady_clock::now();
    RecallCell cell;
    cell.gap = gap;
    cell.distance = options.passage + gap;
    cell.trials = options.trials;
    cell.window = !windowed ? "none" : cell.distance <= cfg.sliding_window_size ? "inside" : "outside";
    RecallScore sum;
    for (const auto& tokens : texts) {
      const auto s = score_recall_prompts(cfg, ttt, w, build_recall_prompts(tokens, bos_id, options.passage, gap),
                                          options.passage);
      sum.tokens += s.tokens;
      sum.first_nll += s.first_nll;
      sum.repeat_nll += s.repeat_nll;
      sum.control_nll += s.control_nll;
      sum.repeat_correct += s.repeat_correct;
      sum.control_correct += s.control_correct;
    }
    const auto tokens = static_cast<double>(sum.tokens);
    cell.first_nll = sum.first_nll / tokens;
    cell.repeat_nll = sum.repeat_nll / tokens;
    cell.control_nll = sum.control_nll / tokens;
    cell.repeat_accuracy = static_cast<double>(sum.repeat_correct) / tokens;
    cell.control_accuracy = static_cast<double>(sum.control_correct) / tokens;
    cell.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (on_cell) on_cell(cell);
    cells.push_back(cell);
  }
  return cells;
}

}  // namespace ttt

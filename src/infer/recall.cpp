#include "infer/recall.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "infer/decoder.h"
#include "infer/target_scores.h"

namespace ttt {
namespace {

// Summed NLL and argmax hits of ids[first .. last) (first >= 1) from the logits that predict
// them, logits[first - 1 .. last - 1) of the prompt.
TargetScores score_tokens(const torch::Tensor& logits, const std::vector<int64_t>& ids, int64_t first, int64_t last,
                          int64_t logits_begin) {
  return score_targets(logits.slice(1, first - 1 - logits_begin, last - 1 - logits_begin),
                       prompt_ids(ids, first, last, logits.device()));
}

// Reads a prompt BOS, P, gap, X and scores X's tokens 2..L; `first` also gets P's tokens 2..L.
TargetScores read_and_score(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                            const std::vector<int64_t>& ids, int64_t passage, TargetScores* first) {
  const torch::Device device = w.wte().device();
  const auto n = static_cast<int64_t>(ids.size());
  const int64_t second = n - passage;  // index of X's first token
  DecodeState state = start_decoding(cfg, ttt, w);
  // BOS and P with their logits: those at 1 .. L - 1 predict P's tokens 2..L.
  const auto head = read_tokens(cfg, ttt, w, state, prompt_ids(ids, 0, 1 + passage, device), /*all_logits=*/true);
  if (first) *first = score_tokens(head, ids, 2, 1 + passage, 0);
  if (second > 1 + passage) read_tokens(cfg, ttt, w, state, prompt_ids(ids, 1 + passage, second, device));
  // X but its last token, with the logits predicting X's tokens 2..L.
  const auto tail = read_tokens(cfg, ttt, w, state, prompt_ids(ids, second, n - 1, device), /*all_logits=*/true);
  return score_tokens(tail, ids, second + 1, n, second);
}

}  // namespace

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
  torch::NoGradGuard no_grad;  // the decoder turns gradients on for the inner steps only
  RecallScore score;
  score.tokens = passage - 1;
  TargetScores first;
  const auto repeat = read_and_score(cfg, ttt, w, prompts.repeat, passage, &first);
  const auto control = read_and_score(cfg, ttt, w, prompts.control, passage, nullptr);
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

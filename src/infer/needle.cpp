#include "infer/needle.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <sstream>
#include <stdexcept>

#include "infer/decoder.h"
#include "infer/target_scores.h"

namespace ttt {
namespace {

std::vector<int64_t> encode(const Tokenizer& tokenizer, const std::string& text) {
  const auto ids = tokenizer.encode(text);
  return {ids.begin(), ids.end()};
}

}  // namespace

void check_needle_options(const NeedleOptions& options) {
  if (options.lengths.empty()) throw std::invalid_argument("no context lengths given for the needle suite");
  for (int64_t length : options.lengths)
    if (length < 2) throw std::invalid_argument("needle context length " + std::to_string(length) + " is below 2");
  if (options.depths.empty()) throw std::invalid_argument("no needle depths given");
  for (double depth : options.depths)
    if (!(depth >= 0 && depth <= 1)) {
      std::ostringstream message;
      message << "needle depth " << depth << " is outside [0, 1]";
      throw std::invalid_argument(message.str());
    }
  if (options.trials < 1)
    throw std::invalid_argument("needle trials must be >= 1, not " + std::to_string(options.trials));
  if (options.key_digits < 1 || options.key_digits > 18)
    throw std::invalid_argument("pass-key digits must be in 1..18, not " + std::to_string(options.key_digits));
  if (options.key_kind != "digits" && options.key_kind != "letters")
    throw std::invalid_argument("pass-key kind must be digits or letters, not '" + options.key_kind + "'");
  if (options.needle_form != "repeated" && options.needle_form != "single")
    throw std::invalid_argument("needle form must be repeated or single, not '" + options.needle_form + "'");
}

std::string pass_key(uint64_t seed, int64_t trial, int64_t length, const std::string& kind) {
  // mt19937_64's sequence is fixed by the standard (unlike the distributions), so keys are the
  // same on every platform; the modulo's bias (below 1e-17) does not matter here.
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(trial));
  std::string key;
  for (int64_t i = 0; i < length; ++i)
    key += kind == "letters" ? static_cast<char>('a' + rng() % 26)
                             : static_cast<char>('0' + (i == 0 ? 1 + rng() % 9 : rng() % 10));
  return key;
}

NeedleText needle_text(const Tokenizer& tokenizer, const std::string& key, const std::string& form) {
  const std::string query = "\nWhat is the pass key? The pass key is", answer = " " + key;
  NeedleText text;
  const std::string restated = form == "single" ? "" : " " + key + " is the pass key.";
  text.needle = encode(tokenizer, "\nThe pass key is " + key + ". Remember it." + restated + "\n");
  text.query = encode(tokenizer, query);
  const auto both = encode(tokenizer, query + answer);
  if (both.size() <= text.query.size() || !std::equal(text.query.begin(), text.query.end(), both.begin()))
    throw std::invalid_argument("tokenizer " + tokenizer.name() +
                                " merges the needle query with its answer; the answer cannot be scored on its own");
  text.answer.assign(both.begin() + static_cast<std::ptrdiff_t>(text.query.size()), both.end());
  return text;
}

int64_t haystack_size(const NeedleText& text, int64_t length) {
  const auto fixed = static_cast<int64_t>(1 + text.needle.size() + text.query.size() + text.answer.size());
  if (length < fixed)
    throw std::invalid_argument("a needle prompt of " + std::to_string(length) +
                                " tokens cannot hold the needle, query and answer (" + std::to_string(fixed) +
                                " tokens with BOS)");
  return length - fixed;
}

NeedlePrompt build_needle_prompt(const NeedleText& text, const std::vector<int64_t>& haystack, int64_t bos_id,
                                 int64_t length, double depth) {
  const int64_t h = haystack_size(text, length);
  if (static_cast<int64_t>(haystack.size()) < h)
    throw std::invalid_argument("the haystack holds " + std::to_string(haystack.size()) + " tokens; a prompt of " +
                                std::to_string(length) + " needs " + std::to_string(h));
  const auto split = static_cast<int64_t>(std::llround(depth * static_cast<double>(h)));
  NeedlePrompt prompt;
  auto& ids = prompt.ids;
  ids.reserve(length);
  ids.push_back(bos_id);
  ids.insert(ids.end(), haystack.begin(), haystack.begin() + split);
  prompt.needle_begin = static_cast<int64_t>(ids.size());
  ids.insert(ids.end(), text.needle.begin(), text.needle.end());
  prompt.needle_end = static_cast<int64_t>(ids.size());
  ids.insert(ids.end(), haystack.begin() + split, haystack.begin() + h);
  ids.insert(ids.end(), text.query.begin(), text.query.end());
  prompt.answer_begin = static_cast<int64_t>(ids.size());
  ids.insert(ids.end(), text.answer.begin(), text.answer.end());
  return prompt;
}

AnswerScore score_needle_prompt(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                                const NeedlePrompt& prompt) {
  torch::NoGradGuard no_grad;  // the decoder turns gradients on for the inner steps only
  const torch::Device device = w.wte().device();
  const auto length = static_cast<int64_t>(prompt.ids.size());
  DecodeState state = start_decoding(cfg, ttt, w);
  read_tokens(cfg, ttt, w, state, prompt_ids(prompt.ids, 0, prompt.answer_begin, device));
  // Logits predicting each answer token: the state's after the query, then those of every answer
  // token read but the last (whose prediction is not part of the answer).
  auto logits = state.last_logits.unsqueeze(1);
  if (length - prompt.answer_begin > 1) {
    const auto rest = read_tokens(cfg, ttt, w, state, prompt_ids(prompt.ids, prompt.answer_begin, length - 1, device),
                                  /*all_logits=*/true);
    logits = torch::cat({logits, rest.to(logits.dtype())}, 1);
  }
  auto scores = score_targets(logits, prompt_ids(prompt.ids, prompt.answer_begin, length, device));
  AnswerScore score;
  score.tokens = length - prompt.answer_begin;
  score.correct = scores.correct();
  score.correct_at = std::move(scores.correct_at);
  score.nll = scores.nll;
  return score;
}

std::string needle_window(const ModelConfig& cfg, const NeedlePrompt& prompt) {
  if (cfg.seq_modeling_block != SeqModelingBlock::kSlidingWindow) return "none";
  // The query at answer_begin - 1 sees keys k with (answer_begin - 1) - k < W (model/attention.h).
  const int64_t window = cfg.sliding_window_size, reader = prompt.answer_begin - 1;
  if (reader - prompt.needle_begin < window) return "inside";
  if (reader - (prompt.needle_end - 1) >= window) return "outside";
  return "partly";
}

std::vector<NeedleCell> run_needle_suite(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                                         const Tokenizer& tokenizer, TokenSource& haystack,
                                         const NeedleOptions& options,
                                         const std::function<void(const NeedleCell&)>& on_cell) {
  check_needle_options(options);
  const int64_t longest = *std::max_element(options.lengths.begin(), options.lengths.end());
  // Per trial: its key's text and its haystack, as long as the longest prompt needs.
  std::vector<NeedleText> texts;
  std::vector<std::vector<int64_t>> haystacks;
  for (int64_t t = 0; t < options.trials; ++t)
    texts.push_back(
        needle_text(tokenizer, pass_key(options.seed, t, options.key_digits, options.key_kind), options.needle_form));
  int64_t most = 0;
  for (const auto& text : texts) most = std::max(most, haystack_size(text, longest));
  if (haystack.size() < most)
    throw std::invalid_argument("the haystack text (" + haystack.describe() + ") holds " +
                                std::to_string(haystack.size()) + " tokens; prompts of " + std::to_string(longest) +
                                " need " + std::to_string(most));
  for (int64_t t = 0; t < options.trials; ++t) {
    const int64_t offset = t * (haystack.size() - most) / options.trials;
    std::vector<int64_t> tokens(most);
    haystack.read(offset, most, tokens.data());
    haystacks.push_back(std::move(tokens));
  }

  std::vector<NeedleCell> cells;
  for (int64_t length : options.lengths) {
    for (double depth : options.depths) {
      const auto start = std::chrono::steady_clock::now();
      NeedleCell cell;
      cell.length = length;
      cell.depth = depth;
      cell.trials = options.trials;
      int64_t passed = 0, tokens = 0, correct = 0;
      std::vector<int64_t> correct_at, answers_at;  // by answer token index
      double nll = 0, distance = 0;
      for (int64_t t = 0; t < options.trials; ++t) {
        const auto prompt = build_needle_prompt(texts[t], haystacks[t], tokenizer.bos_id(), length, depth);
        const auto score = score_needle_prompt(cfg, ttt, w, prompt);
        passed += score.correct == score.tokens;
        tokens += score.tokens;
        correct += score.correct;
        for (size_t i = 0; i < score.correct_at.size(); ++i) {
          if (i == correct_at.size()) correct_at.push_back(0), answers_at.push_back(0);
          correct_at[i] += score.correct_at[i];
          ++answers_at[i];
        }
        nll += score.nll;
        distance += static_cast<double>(prompt.answer_begin - prompt.needle_begin);
        const std::string window = needle_window(cfg, prompt);
        cell.window = t == 0 || cell.window == window ? window : "mixed";
      }
      cell.accuracy = static_cast<double>(passed) / static_cast<double>(options.trials);
      cell.token_accuracy = static_cast<double>(correct) / static_cast<double>(tokens);
      for (size_t i = 0; i < correct_at.size(); ++i)
        cell.token_accuracy_at.push_back(static_cast<double>(correct_at[i]) / static_cast<double>(answers_at[i]));
      cell.answer_nll = nll / static_cast<double>(tokens);
      cell.distance = distance / static_cast<double>(options.trials);
      cell.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (on_cell) on_cell(cell);
      cells.push_back(cell);
    }
  }
  return cells;
}

}  // namespace ttt

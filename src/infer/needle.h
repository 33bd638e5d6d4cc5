// Needle in a haystack (pass-key retrieval): a pass key is hidden at a chosen depth of real text
// and the model is asked for it at the end. A prompt of L tokens is
//   BOS, haystack[0, a), needle, haystack[a, h), query, answer
// with needle "\nThe pass key is K. Remember it. K is the pass key.\n" (the "repeated" form of the
// classic pass-key test) or "\nThe pass key is K. Remember it.\n" ("single": the key follows "pass key
// is" once only), query "\nWhat is the pass key? The pass key is" and answer " K". The model reads the prompt through
// the decoder (the path `ttt generate` takes, so E2E models learn from the haystack chunk by chunk as they read it) and
// is scored on the answer, teacher-forced: a trial passes when every answer token is the model's
// most likely next token, which is when greedy decoding would write the key. Every model family
// and tokenizer works; nothing about the model is assumed beyond its decoder.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/token_source.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"
#include "ttt/ttt_options.h"

namespace ttt {

struct NeedleOptions {
  std::vector<int64_t> lengths;  // tokens per prompt, BOS and answer included
  std::vector<double> depths;    // where the needle sits in the haystack: 0 its start, 1 its end
  int64_t trials = 4;            // prompts per (length, depth): each its own key and haystack
  int64_t key_digits = 5;        // characters of the pass key
  // "digits" (a number, the first digit not 0: the paper's pass key) or "letters" (lowercase
  // a-z: RULER's word-like keys, for models that copy text but have seen few digits).
  std::string key_kind = "digits";
  // "repeated" (the classic needle, which states the key twice) or "single" (once).
  std::string needle_form = "repeated";
  uint64_t seed = 0;
};

// Throws std::invalid_argument naming the option that is out of range.
void check_needle_options(const NeedleOptions& options);

// The pass key of a trial, a function of (seed, trial): `length` decimal digits, the first not 0
// (kind "digits"), or `length` lowercase letters (kind "letters").
std::string pass_key(uint64_t seed, int64_t trial, int64_t length, const std::string& kind = "digits");

struct NeedleText {
  std::vector<int64_t> needle, query, answer;
};

// The needle (of `form`, see NeedleOptions), query and answer for `key`, tokenized. The answer is
// what encode(query + answer) adds after encode(query), so it is tokenized as it follows the
// query; throws std::invalid_argument when the tokenizer merges across that boundary.
NeedleText needle_text(const Tokenizer& tokenizer, const std::string& key, const std::string& form = "repeated");

struct NeedlePrompt {
  std::vector<int64_t> ids;  // [length]
  int64_t needle_begin = 0;  // index of the needle's first token
  int64_t needle_end = 0;    // one past its last
  int64_t answer_begin = 0;  // index of the answer's first token (length - answer size)
};

// Haystack tokens a prompt of `length` tokens holds (length minus BOS, needle, query, answer);
// throws std::invalid_argument when they do not fit.
int64_t haystack_size(const NeedleText& text, int64_t length);

// One prompt of exactly `length` tokens from the first haystack_size() tokens of `haystack`, the
// needle inserted before haystack token round(depth * haystack_size()).
NeedlePrompt build_needle_prompt(const NeedleText& text, const std::vector<int64_t>& haystack, int64_t bos_id,
                                 int64_t length, double depth);

struct AnswerScore {
  int64_t tokens = 0;            // answer tokens
  int64_t correct = 0;           // of them, the most likely next token
  std::vector<bool> correct_at;  // per answer token, in order: whether it was the most likely
  double nll = 0;                // summed NLL of the answer tokens (nats)
};

// Reads the prompt up to its answer into a fresh decoding state, then the answer teacher-forced,
// and scores the answer tokens.
AnswerScore score_needle_prompt(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                                const NeedlePrompt& prompt);

// Where the needle lies relative to the sliding window when the model predicts the answer's
// first token: "inside" (all of it visible), "outside" (none), "partly", or "none" when the model
// has no window (full attention, TTT layers).
std::string needle_window(const ModelConfig& cfg, const NeedlePrompt& prompt);

struct NeedleCell {
  int64_t length = 0;
  double depth = 0;
  int64_t trials = 0;
  double accuracy = 0;        // trials whose whole answer was the most likely continuation
  double token_accuracy = 0;  // answer tokens that were the most likely next token
  // The same by the answer token's index (the trials whose answer has that many tokens): where
  // retrieval fails, e.g. at the key's first character, after which copying takes over.
  std::vector<double> token_accuracy_at;
  double answer_nll = 0;  // mean NLL of an answer token (nats)
  double distance = 0;    // mean tokens from the needle's first token to the answer's first
  std::string window;     // needle_window of every trial, when they agree; else "mixed"
  double seconds = 0;     // wall time of the cell
};

// Every (length, depth) cell, lengths outer, with options.trials prompts each. Trial t reads its
// haystack from `haystack` at offset t * (size - longest haystack) / trials (so trials spread over
// the text), the same for every length and depth; its key is pass_key(seed, t). `on_cell` sees
// each cell when it is done (progress). Throws std::invalid_argument when the text is too short.
std::vector<NeedleCell> run_needle_suite(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                                         const Tokenizer& tokenizer, TokenSource& haystack,
                                         const NeedleOptions& options,
                                         const std::function<void(const NeedleCell&)>& on_cell = nullptr);

}  // namespace ttt

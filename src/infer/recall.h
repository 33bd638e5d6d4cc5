// Recall of a passage read earlier (the repeated-passage task of `ttt eval --task recall`): a
// passage P of L tokens of real text is read, then the G tokens of text that follow it (the gap),
// then either P again or the L tokens that follow the gap (fresh text, the control):
//   repeat:  BOS, P, gap, P          control:  BOS, P, gap, F
// Both prompts go through the decoder (the path `ttt generate` takes: E2E models learn from what
// they read chunk by chunk), and each is scored on its last L tokens but their first, which
// nothing before predicts: mean NLL and how often each token is the most likely one. A model that
// keeps what it read predicts the copy far better than fresh text; every copied token's source
// lies L + G tokens back, so gaps put it inside or beyond a sliding window. The same tokens of the
// passage at its first reading are scored too (what the model knows without having seen them).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/token_source.h"
#include "model/weights.h"
#include "ttt/ttt_options.h"

namespace ttt {

struct RecallOptions {
  int64_t passage = 128;         // L: tokens of a passage
  std::vector<int64_t> gaps{0};  // G: tokens of text between its two readings, one cell each
  int64_t trials = 16;           // passages per gap, spread over the text (the same for every gap)
};

// Throws std::invalid_argument naming the option that is out of range.
void check_recall_options(const RecallOptions& options);

struct RecallPrompts {
  std::vector<int64_t> repeat, control;  // BOS, P, gap, P / F: 1 + 2L + G tokens each
};

// The two prompts of a passage from `text` = P, gap, F (2L + G tokens).
RecallPrompts build_recall_prompts(const std::vector<int64_t>& text, int64_t bos_id, int64_t passage, int64_t gap);

struct RecallScore {
  int64_t tokens = 0;                                     // scored tokens per reading: L - 1
  double first_nll = 0, repeat_nll = 0, control_nll = 0;  // summed over them (nats)
  int64_t repeat_correct = 0, control_correct = 0;        // of them, the most likely next token
};

// Reads the prompts' shared start (BOS, passage, gap) once, each second passage from it, and
// scores them; throws std::invalid_argument for prompts that do not share that start.
RecallScore score_recall_prompts(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                                 const RecallPrompts& prompts, int64_t passage);

struct RecallCell {
  int64_t gap = 0;
  int64_t distance = 0;  // L + G: tokens from a passage token to its copy
  int64_t trials = 0;
  // Mean NLL of a scored token (nats): the passage at its first reading, its copy, fresh text.
  double first_nll = 0, repeat_nll = 0, control_nll = 0;
  double repeat_accuracy = 0, control_accuracy = 0;  // scored tokens that were the most likely next one
  // Whether the copy's source is within the sliding window of the query that predicts it
  // ("inside" when L + G <= W, else "outside"); "none" for models without a window.
  std::string window;
  double seconds = 0;  // wall time of the cell
};

// Every gap, in order, with options.trials passages each: trial t reads its text from `text` at
// offset t * (size - longest) / trials. `on_cell` sees each cell when it is done (progress).
// Throws std::invalid_argument when the text is too short.
std::vector<RecallCell> run_recall_suite(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                                         int64_t bos_id, TokenSource& text, const RecallOptions& options,
                                         const std::function<void(const RecallCell&)>& on_cell = nullptr);

}  // namespace ttt

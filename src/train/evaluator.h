// Evaluation: one ordered pass over a split, mean loss and the NLL of every token position
// averaged over sequences. Meta models are evaluated with test-time training on, at the full
// inner learning rate (the inner loop runs, the outer weights do not change).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "data/sequence_loader.h"
#include "model/weights.h"

namespace ttt {

struct EvalResult {
  double loss = 0.0;                 // mean over sequences of the per-sequence loss
  std::vector<double> nll_by_position;  // [T]
  int64_t num_sequences = 0;
};

// `max_batches` < 0: the whole split.
EvalResult evaluate(const Config& config, const ModelWeights& weights, SequenceLoader& loader, torch::Device device,
                    int64_t max_batches = -1);

// Writes the evaluation into `dir`: eval.json (split, step, loss, num_sequences,
// nll_by_position), eval_nll_by_position.csv (position,nll) and loss_by_position.svg. Each file
// is written beside and renamed, so a reader never sees half of one.
void write_eval_outputs(const std::string& dir, const EvalResult& result, const std::string& split, int64_t step,
                        const std::string& label);

}  // namespace ttt

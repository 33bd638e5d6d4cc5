// Evaluation: one ordered pass over the eval split, the mean loss and the NLL of every token
// position averaged over sequences. Meta models are evaluated with test-time training on: the
// inner loop runs, the outer weights do not change. Training calls it at its end; `ttt eval` (and
// `ttt train training.eval_mode=true`) calls it on a checkpoint, without building a trainer.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "dist/process_group.h"
#include "model/weights.h"
#include "ttt/ttt_options.h"

namespace ttt {

struct EvalResult {
  double loss = 0.0;                    // mean over sequences of the per-sequence loss
  std::vector<double> nll_by_position;  // [T]
  int64_t num_sequences = 0;            // sequences evaluated
  int64_t num_dropped = 0;              // sequences of the split left out (the last partial batch)
};

// Evaluates `weights` on the whole of training.eval_split (its last partial batch is dropped, as
// in the reference). Throws when the split holds less than one batch. In a distributed run each
// rank evaluates its slice of every batch and the sums are reduced: every rank returns the result
// one process would.
EvalResult evaluate(const Config& config, const ModelWeights& weights, const TttOptions& ttt, torch::Device device,
                    ProcessGroup& group);

// Log-spaced bins per doubling of position in the binned loss curve of the eval outputs.
inline constexpr int kEvalBinsPerOctave = 8;

// Writes the evaluation into `dir`: eval.json (split, step, loss, num_sequences, num_dropped,
// test_time_training, inner_learning_rate, nll_by_position, and nll_binned: the mean NLL over
// log-spaced bins of positions, report/position_bins.h, as bins_per_octave and the arrays first,
// last, nll), eval_nll_by_position.csv (position,nll), eval_nll_binned.csv (first,last,nll) and
// loss_by_position.svg (both curves). Each file is written beside and renamed, so a reader
// never sees half of one.
void write_eval_outputs(const std::string& dir, const EvalResult& result, const std::string& split, int64_t step,
                        const std::string& label, const TttOptions& ttt, const ModelConfig& model);

// Evaluates, and rank 0 writes the outputs into the run directory and prints one summary line.
EvalResult evaluate_and_report(const Config& config, const ModelWeights& weights, const TttOptions& ttt,
                               torch::Device device, int64_t step, const std::filesystem::path& run_dir,
                               ProcessGroup& group);

// The checkpoint an evaluation-only run reads: `training.resume_step` (else the latest) of the
// run's own checkpoint directory, else of checkpoint.resume_checkpoint_dir when
// training.load_part is params or all. Throws when there is none.
std::string checkpoint_to_evaluate(const Config& config);

// `ttt eval`: loads the weights of a checkpoint step directory into the model `config` describes
// (the checkpoint's configuration with the user's overrides), evaluates them at the full inner
// learning rate and writes the outputs into the run directory, beside an eval_config.yaml. Reads
// the checkpoint and writes nothing into the checkpoint directory. Launched on several processes
// (torchrun, srun), the evaluation is sharded across them.
EvalResult evaluate_checkpoint(const Config& config, const std::string& step_dir);

}  // namespace ttt

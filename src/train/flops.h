// The model FLOPs of training, which model FLOPs utilisation (MFU) divides by the machine's peak:
// a token costs three times its forward pass (the backward pass does twice the forward's work),
// and the forward pass does 2 FLOPs per weight of every matrix product (attention projections,
// MLPs, prime MLPs, the output head) plus 4 D per attended key in every layer (q k^T and the
// weighted sum of values), with the keys each position attends to under the model's mask.
//
// Test-time training's own work (the inner gradients, their second derivatives, recomputation) is
// not counted: the MFU of an E2E step says how much of the machine becomes the model's useful
// work, on the same scale as the baselines'.
#pragma once

#include <cstdint>

#include "config/config.h"

namespace ttt {

// Average over the positions of a sequence of `seq_length` tokens.
double training_flops_per_token(const ModelConfig& model, int64_t seq_length);

}  // namespace ttt

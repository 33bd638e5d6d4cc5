// The outer learning-rate schedule of the reference (optax warmup_cosine_decay_schedule): linear
// from init_lr to lr over lr_warmup_steps, then cosine from lr down to end_lr at lr_decay_steps,
// constant end_lr after. lr == 0 gives a constant 0.
#pragma once

#include <cstdint>

#include "config/config.h"

namespace ttt {

double outer_learning_rate(const OptimizerConfig& optimizer, int64_t step);

}  // namespace ttt

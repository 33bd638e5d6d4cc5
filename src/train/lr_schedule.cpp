#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace ttt {

double outer_learning_rate(const OptimizerConfig& o, int64_t step) {
  if (o.lr == 0.0) return 0.0;
  if (step < o.lr_warmup_steps)
    return o.init_lr + (o.lr - o.init_lr) * static_cast<double>(step) / static_cast<double>(o.lr_warmup_steps);
  const int64_t decay = o.lr_decay_steps - o.lr_warmup_steps;
  if (decay <= 0) return o.end_lr;
  const double t = static_cast<double>(std::min(step - o.lr_warmup_steps, decay)) / static_cast<double>(decay);
  return o.end_lr + (o.lr - o.end_lr) * 0.5 * (1.0 + std::cos(M_PI * t));
}

}  // namespace ttt

// Consistency checks across fields (seq_length vs mini_batch_size, suffix_len vs layers, ...).
#pragma once

#include "config/config.h"

namespace ttt {

// Throws ConfigError naming the first inconsistent setting.
void validate_config(const Config& config);

}  // namespace ttt

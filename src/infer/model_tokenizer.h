// The tokenizer that turns text into a model's input: the run's training.tokenizer_name unless
// another is named, checked against the model's vocabulary and BOS id before anything is read.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "tokenizer/tokenizer.h"

namespace ttt {

// `spec`: "byte", a tokenizer.json or a directory holding one; empty = config.training.tokenizer_name.
// Throws ConfigError when its ids do not fit config.model (vocabulary larger than vocab_size, or
// another BOS id), std::runtime_error when it cannot be loaded.
std::unique_ptr<Tokenizer> load_model_tokenizer(const std::string& spec, const Config& config);

}  // namespace ttt

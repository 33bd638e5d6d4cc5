#include "infer/model_tokenizer.h"

namespace ttt {

std::unique_ptr<Tokenizer> load_model_tokenizer(const std::string& spec, const Config& config) {
  auto tokenizer = load_tokenizer(spec.empty() ? config.training.tokenizer_name : spec);
  if (tokenizer->vocab_size() > config.model.vocab_size || tokenizer->bos_id() != config.model.bos_token_id)
    throw ConfigError("tokenizer " + tokenizer->name() + " (" + std::to_string(tokenizer->vocab_size()) +
                      " tokens, BOS " + std::to_string(tokenizer->bos_id()) + ") does not fit the model (vocab_size " +
                      std::to_string(config.model.vocab_size) + ", BOS " + std::to_string(config.model.bos_token_id) +
                      ")");
  return tokenizer;
}

}  // namespace ttt

// load_tokenizer: "byte", a tokenizer.json, or a directory holding one (directly or under models/,
// where Hugging Face snapshots of some repositories keep it).
#include <filesystem>
#include <stdexcept>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/byte_tokenizer.h"

namespace ttt {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec) {
  namespace fs = std::filesystem;
  if (spec == "byte") return std::make_unique<ByteTokenizer>();
  std::error_code error;
  if (fs::is_regular_file(spec, error)) return std::make_unique<BpeTokenizer>(spec);
  if (fs::is_directory(spec, error)) {
    for (const fs::path& candidate : {fs::path(spec) / "tokenizer.json", fs::path(spec) / "models" / "tokenizer.json"})
      if (fs::is_regular_file(candidate, error)) return std::make_unique<BpeTokenizer>(candidate.string());
    throw std::runtime_error("tokenizer: no tokenizer.json in directory " + spec + " (nor under models/)");
  }
  throw std::runtime_error("tokenizer: '" + spec + "' is neither \"byte\" nor an existing tokenizer.json or directory");
}

}  // namespace ttt

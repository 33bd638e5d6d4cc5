// `ttt tokenize`: text -> token ids, or with --decode ids -> text, with the tokenizer the data
// pipeline uses (the byte tokenizer or a Hugging Face tokenizer.json).
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "commands.h"
#include "tokenizer/tokenizer.h"
#include "util/file_io.h"

namespace ttt::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer = "byte";
  std::string text;
  std::string file;
  bool decode = false;
  bool bos = false;
  bool eos = false;
  bool special = false;
};

std::string read_input(const TokenizeOptions& options, bool has_text) {
  return has_text ? options.text : read_file_or_stdin(options.file);
}

std::vector<int32_t> parse_ids(const std::string& input, int64_t vocab_size) {
  std::vector<int32_t> ids;
  std::istringstream words(input);
  std::string word;
  while (words >> word) {
    std::size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size()) throw std::runtime_error("not a token id: '" + word + "'");
    if (id < 0 || id >= vocab_size)
      throw std::runtime_error("token id " + word + " is outside the vocabulary [0, " + std::to_string(vocab_size) +
                               ")");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

int run_tokenize(const TokenizeOptions& options, bool has_text) {
  const auto tokenizer = load_tokenizer(options.tokenizer);
  const std::string input = read_input(options, has_text);
  if (options.decode) {
    const auto ids = parse_ids(input, tokenizer->vocab_size());
    try {
      std::cout << tokenizer->decode(ids) << std::flush;  // exactly the bytes: no newline added
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    }
    return 0;
  }
  std::vector<int32_t> ids;
  if (options.bos) ids.push_back(tokenizer->bos_id());
  try {
    const auto body = tokenizer->encode(input, options.special);
    ids.insert(ids.end(), body.begin(), body.end());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("input: ") + e.what());
  }
  if (options.eos) ids.push_back(tokenizer->eos_id());
  std::string line;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  std::cout << line << "\n";
  return 0;
}

}  // namespace

Run add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Encode text to token ids (or decode ids to text with --decode)");
  auto options = std::make_shared<TokenizeOptions>();
  cmd->add_option("--tokenizer", options->tokenizer, "\"byte\", a tokenizer.json, or a directory holding one")
      ->capture_default_str();
  auto* text = cmd->add_option("--text", options->text, "Input given inline (default: stdin)");
  auto* file = cmd->add_option("--file", options->file, "Input read from a file (default: stdin)");
  text->excludes(file);
  auto* decode = cmd->add_flag("--decode", options->decode, "Input is whitespace-separated ids; print their text");
  cmd->add_flag("--bos", options->bos, "Prepend the BOS id")->excludes(decode);
  cmd->add_flag("--eos", options->eos, "Append the EOS id")->excludes(decode);
  cmd->add_flag("--special", options->special, "Encode special-token text (<|begin_of_text|>) as special ids")
      ->excludes(decode);
  return [options, text]() { return run_tokenize(*options, text->count() > 0); };
}

}  // namespace ttt::cli

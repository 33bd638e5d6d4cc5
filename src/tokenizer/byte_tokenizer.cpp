#include "tokenizer/byte_tokenizer.h"

#include <stdexcept>

namespace ttt {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text, bool /*allow_special*/) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (auto id : ids) {
    if (id < 0 || id >= kVocabSize)
      throw std::invalid_argument("byte tokenizer: id " + std::to_string(id) + " out of range");
    if (id < 256) out.push_back(static_cast<char>(id));
  }
  return out;
}

}  // namespace ttt

#include "tokenizer/utf8.h"

#include <cstdint>
#include <cstring>

namespace ttt::utf8 {
namespace {

// Length of the valid sequence starting at `pos`, or 0 if it is invalid.
std::size_t sequence_length(const unsigned char* s, std::size_t pos, std::size_t size) {
  const unsigned char lead = s[pos];
  if (lead < 0x80) return 1;
  std::size_t length;
  unsigned char min_second = 0x80, max_second = 0xBF;  // the second byte rules out overlongs etc.
  if (lead >= 0xC2 && lead <= 0xDF)
    length = 2;
  else if (lead == 0xE0)
    length = 3, min_second = 0xA0;
  else if (lead >= 0xE1 && lead <= 0xEC)
    length = 3;
  else if (lead == 0xED)
    length = 3, max_second = 0x9F;  // U+D800..U+DFFF are surrogates
  else if (lead >= 0xEE && lead <= 0xEF)
    length = 3;
  else if (lead == 0xF0)
    length = 4, min_second = 0x90;
  else if (lead >= 0xF1 && lead <= 0xF3)
    length = 4;
  else if (lead == 0xF4)
    length = 4, max_second = 0x8F;  // nothing above U+10FFFF
  else
    return 0;
  if (pos + length > size) return 0;
  if (s[pos + 1] < min_second || s[pos + 1] > max_second) return 0;
  for (std::size_t i = 2; i < length; ++i)
    if ((s[pos + i] & 0xC0) != 0x80) return 0;
  return length;
}

}  // namespace

std::size_t find_invalid(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t pos = 0;
  while (pos < size) {
    // Most text is ASCII: skip it eight bytes at a time.
    if (pos + 8 <= size) {
      std::uint64_t word;
      std::memcpy(&word, s + pos, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        pos += 8;
        continue;
      }
    }
    const std::size_t length = sequence_length(s, pos, size);
    if (length == 0) return pos;
    pos += length;
  }
  return std::string_view::npos;
}

bool next_code_point(std::string_view text, std::size_t& pos, char32_t& code_point) {
  if (pos >= text.size()) return false;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t length = sequence_length(s, pos, text.size());
  if (length == 0) return false;
  static constexpr unsigned char kLeadMask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  char32_t cp = s[pos] & kLeadMask[length];
  for (std::size_t i = 1; i < length; ++i) cp = (cp << 6) | (s[pos + i] & 0x3F);
  code_point = cp;
  pos += length;
  return true;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string from_latin1(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 8);
  for (unsigned char b : bytes) append(out, b);
  return out;
}

}  // namespace ttt::utf8

#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace ttt::byte_level {
namespace {

bool stands_for_itself(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
}

const std::array<char32_t, 256>& byte_table() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next_unprintable = 0x100;  // the other bytes get U+0100, U+0101, ... in byte order
    for (int b = 0; b < 256; ++b) t[b] = stands_for_itself(b) ? static_cast<char32_t>(b) : next_unprintable++;
    return t;
  }();
  return table;
}

}  // namespace

char32_t byte_to_char(std::uint8_t byte) { return byte_table()[byte]; }

int char_to_byte(char32_t cp) {
  // The image is [0x21, 0xFF] (minus the unprintable bytes) and [0x100, 0x143].
  static const std::array<int, 0x144> inverse = [] {
    std::array<int, 0x144> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[byte_table()[b]] = b;
    return t;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

std::string bytes_to_text(std::string_view bytes) {
  std::string text;
  text.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) utf8::append(text, byte_to_char(b));
  return text;
}

std::optional<std::string> text_to_bytes(std::string_view text) {
  std::string bytes;
  bytes.reserve(text.size());
  std::size_t pos = 0;
  char32_t cp;
  while (utf8::next_code_point(text, pos, cp)) {
    const int b = char_to_byte(cp);
    if (b < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(b));
  }
  if (pos != text.size()) return std::nullopt;
  return bytes;
}

}  // namespace ttt::byte_level

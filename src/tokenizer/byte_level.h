// GPT-2's byte-level alphabet: every byte stands for one printable Unicode character (printable
// Latin-1 bytes for themselves, the rest for U+0100 onwards), so that byte-level BPE vocabularies
// can be stored as text. The map is a bijection between the 256 bytes and 256 characters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ttt::byte_level {

char32_t byte_to_char(std::uint8_t byte);

// The byte a character stands for, or -1 for a character outside the alphabet.
int char_to_byte(char32_t code_point);

// The UTF-8 text of the characters the bytes stand for ("Hello world" -> "HelloĠworld").
std::string bytes_to_text(std::string_view bytes);

// The bytes a byte-level token stands for, or nothing when it holds a character outside the
// alphabet (or is not valid UTF-8).
std::optional<std::string> text_to_bytes(std::string_view text);

}  // namespace ttt::byte_level

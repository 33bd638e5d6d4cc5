// UTF-8 helpers for the tokenizers: validation (PCRE2 in UTF mode needs valid input, and we check
// once per text so that the matcher can skip its own per-call check), decoding and encoding.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ttt::utf8 {

// Offset of the first byte that does not start a valid UTF-8 sequence (overlong forms, surrogates
// and code points above U+10FFFF are invalid, as in RFC 3629), or std::string_view::npos.
std::size_t find_invalid(std::string_view text);

// Decodes the code point at `pos` of valid UTF-8 and advances `pos` past it. Returns false (and
// leaves `pos`) at the end of the text or at an invalid sequence.
bool next_code_point(std::string_view text, std::size_t& pos, char32_t& code_point);

void append(std::string& out, char32_t code_point);

// Latin-1 (ISO 8859-1) bytes as UTF-8: each byte is the code point of the same value.
std::string from_latin1(std::string_view bytes);

}  // namespace ttt::utf8

#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>

namespace ttt {
namespace {

// Unicode White_Space, the set Oniguruma's \s matches in UTF-8 mode.
constexpr const char* kWhiteSpace =
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

std::string with_white_space_classes(const std::string& pattern) {
  std::string out;
  out.reserve(pattern.size() + 128);
  bool in_class = false;
  bool class_just_opened = false;  // a ']' right after '[' or '[^' is a literal
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      class_just_opened = false;
      if (e == 's')
        out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      else if (e == 'S' && !in_class)
        out += "[^" + std::string(kWhiteSpace) + "]";
      else
        out += {c, e};
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      class_just_opened = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const std::size_t end = pattern.find(":]", i + 2);  // a POSIX class such as [:alpha:]
      if (end != std::string::npos) {
        out.append(pattern, i, end + 2 - i);
        i = end + 1;
        class_just_opened = false;
        continue;
      }
    }
    if (in_class && c == ']' && !class_just_opened) in_class = false;
    class_just_opened = false;
    out += c;
  }
  return out;
}

struct PretokenRegex::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

PretokenRegex::PretokenRegex(const std::string& pattern) : pattern_(pattern), compiled_(new Compiled) {
  const std::string rewritten = with_white_space_classes(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                                  PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!compiled_->code)
    throw std::runtime_error("pre-tokenizer regex: " + pcre2_message(error) + " at offset " + std::to_string(offset));
  // The JIT makes matching several times faster; where it is unavailable the interpreter is used.
  pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE);
}

PretokenRegex::~PretokenRegex() = default;

PretokenSplitter::PretokenSplitter(const PretokenRegex& regex, std::string_view text)
    : regex_(regex), text_(text), match_data_(pcre2_match_data_create_from_pattern(regex.compiled_->code, nullptr)) {
  if (!match_data_) throw std::bad_alloc();
}

PretokenSplitter::~PretokenSplitter() { pcre2_match_data_free(static_cast<pcre2_match_data*>(match_data_)); }

bool PretokenSplitter::next(std::string_view& piece) {
  while (true) {
    if (!have_match_ && !exhausted_) find_match();
    if (exhausted_) {  // the rest of the text is one piece
      if (pos_ >= text_.size()) return false;
      piece = text_.substr(pos_);
      pos_ = text_.size();
      return true;
    }
    if (match_start_ > pos_) {  // the stretch before the match
      piece = text_.substr(pos_, match_start_ - pos_);
      pos_ = match_start_;
      return true;
    }
    have_match_ = false;
    if (match_end_ == match_start_) {
      // An empty match cuts the text but makes no piece; search on from the next character.
      std::size_t step = match_start_ + 1;
      while (step < text_.size() && (static_cast<unsigned char>(text_[step]) & 0xC0) == 0x80) ++step;
      search_from_ = step;
      if (step > text_.size()) exhausted_ = true;
      continue;
    }
    piece = text_.substr(match_start_, match_end_ - match_start_);
    pos_ = search_from_ = match_end_;
    return true;
  }
}

void PretokenSplitter::find_match() {
  if (search_from_ > text_.size()) {
    exhausted_ = true;
    return;
  }
  auto* data = static_cast<pcre2_match_data*>(match_data_);
  const int rc = pcre2_match(regex_.compiled_->code, reinterpret_cast<PCRE2_SPTR>(text_.data()), text_.size(),
                             search_from_, PCRE2_NO_UTF_CHECK, data, nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) {
    exhausted_ = true;
    return;
  }
  if (rc < 0) throw std::runtime_error("pre-tokenizer regex: " + pcre2_message(rc));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
  match_start_ = ovector[0];
  match_end_ = ovector[1];
  have_match_ = true;
}

}  // namespace ttt

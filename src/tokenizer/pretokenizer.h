// The regex pre-tokenizer of Hugging Face `Split` (behaviour "Isolated"): the text is cut into
// pieces at every match of a pattern, each match and each stretch between matches being a piece.
// BPE then runs on every piece separately.
//
// Hugging Face runs the pattern with Oniguruma; we use PCRE2 (UTF + UCP, JIT-compiled), whose
// syntax and backtracking semantics agree for these patterns. One difference is patched: PCRE2's
// \s also matches U+180E, which left Unicode's White_Space in 6.3, so \s and \S are rewritten to
// the White_Space set that Oniguruma uses (\S inside a character class is left to PCRE2).
// \p{L} and \p{N} come from each library's Unicode tables: the system PCRE2 (10.42) has Unicode
// 14.0, as has Oniguruma 6.9.8 in `tokenizers`; characters assigned in later Unicode versions
// (e.g. CJK Extension H) can split differently when either library is upgraded.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace ttt {

class PretokenRegex {
 public:
  // Throws std::runtime_error with PCRE2's message for an invalid pattern.
  explicit PretokenRegex(const std::string& pattern);
  ~PretokenRegex();
  PretokenRegex(const PretokenRegex&) = delete;
  PretokenRegex& operator=(const PretokenRegex&) = delete;

  const std::string& pattern() const { return pattern_; }

 private:
  friend class PretokenSplitter;
  struct Compiled;
  std::string pattern_;
  std::unique_ptr<Compiled> compiled_;
};

// Walks the pieces of one text. `text` must be valid UTF-8 (checked by the caller, once: the
// matcher is told to skip its own check, which would otherwise rescan the rest of the text at
// every match) and must outlive the splitter. Holds its own match data, so one splitter per
// thread while the regex is shared.
class PretokenSplitter {
 public:
  PretokenSplitter(const PretokenRegex& regex, std::string_view text);
  ~PretokenSplitter();
  PretokenSplitter(const PretokenSplitter&) = delete;
  PretokenSplitter& operator=(const PretokenSplitter&) = delete;

  // The next non-empty piece, or false at the end of the text.
  bool next(std::string_view& piece);

 private:
  const PretokenRegex& regex_;
  std::string_view text_;
  std::size_t pos_ = 0;          // start of the next piece
  std::size_t search_from_ = 0;  // where the next match is searched from
  std::size_t match_start_ = 0;  // the pending match, once found: [match_start_, match_end_)
  std::size_t match_end_ = 0;
  bool have_match_ = false;
  bool exhausted_ = false;  // no more matches after pos_
  void* match_data_;        // pcre2_match_data_8, kept out of the header

  void find_match();
};

// \s and \S rewritten to Unicode White_Space (see above); exposed for the tests.
std::string with_white_space_classes(const std::string& pattern);

}  // namespace ttt

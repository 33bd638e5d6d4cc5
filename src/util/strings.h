// Small string helpers shared by the configuration code and the CLI (no dependencies).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ttt {

std::string trim(std::string_view text);
// `text` with every line break (CR, LF) replaced by a space: for one-line error messages that quote input.
std::string single_line(std::string_view text);
bool starts_with(std::string_view text, std::string_view prefix);
// The text up to its first newline (error messages: LibTorch appends backtraces and context lines).
std::string first_line(std::string_view text);
bool ends_with(std::string_view text, std::string_view suffix);

// Splits on every occurrence of `separator` (empty pieces are kept).
std::vector<std::string> split(std::string_view text, char separator);

// Splits on `separator` only outside quotes ('...' or "...") and brackets ([...], {...}),
// so "a,'b,c',[d,e]" gives {"a", "'b,c'", "[d,e]"}. Pieces are trimmed.
std::vector<std::string> split_top_level(std::string_view text, char separator);

std::string join(const std::vector<std::string>& pieces, std::string_view separator);
std::string replace_all(std::string text, std::string_view from, std::string_view to);
std::string to_lower(std::string_view text);

// Levenshtein distance (insertions, deletions, substitutions each cost 1).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidates closest to `word` by edit distance, best first, keeping only those within
// `max_distance` and at most `limit` of them (ties keep the candidates' order).
std::vector<std::string> closest_matches(std::string_view word, const std::vector<std::string>& candidates,
                                         std::size_t max_distance, std::size_t limit = 3);

}  // namespace ttt

// What every SVG figure writes the same way: escaped text, coordinates with two decimals, and a
// rough text width for laying out labels without measuring fonts. All figures use 12 px text.
#pragma once

#include <string>

namespace ttt::report {

// Rough advance of one character of 12 px sans-serif text.
inline constexpr double kCharWidth = 7.2;

// XML text and attribute values: the five special characters escaped, and control characters
// (not allowed in XML 1.0) replaced so the file always parses.
std::string xml_escape(const std::string& text);

// `value` with `decimals` digits after the point ("%.*f"): cell values, table entries.
std::string decimal(double value, int decimals);

// A coordinate or length, with two decimals.
std::string number(double value);

// Rough display width of a label: UTF-8 continuation bytes do not start a character.
double text_width(const std::string& text);

}  // namespace ttt::report

#include "model/param_filter.h"

#include <cctype>
#include <sstream>

#include "config/config.h"

namespace ttt {
namespace {

std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream stream(s);
  std::string part;
  while (std::getline(stream, part, '.')) parts.push_back(part);
  return parts;
}

bool is_index(const std::string& part) {
  if (part.empty()) return false;
  for (char c : part)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Recursive match of spec parts [si..] against path parts [pi..]; `**` consumes one or more parts.
bool match_parts(const std::vector<std::string>& spec, size_t si, const std::vector<std::string>& path, size_t pi) {
  if (si == spec.size()) return pi == path.size();
  if (pi == path.size()) return false;
  const std::string& s = spec[si];
  if (s == "**") return match_parts(spec, si + 1, path, pi + 1) || match_parts(spec, si, path, pi + 1);
  if (s == "*") return match_parts(spec, si + 1, path, pi + 1);
  return s == path[pi] && match_parts(spec, si + 1, path, pi + 1);
}

}  // namespace

std::string stacked_path(const std::string& path) {
  std::string out;
  for (const auto& part : split_dots(path)) {
    if (is_index(part)) continue;
    if (!out.empty()) out += '.';
    out += part;
  }
  return out;
}

ParamFilter::ParamFilter(std::vector<std::string> specs, std::string what)
    : raw_(std::move(specs)), what_(std::move(what)) {
  const std::string exclude = "exclude ";
  for (const auto& raw : raw_) {
    Spec spec;
    std::string body = raw;
    if (body.rfind(exclude, 0) == 0) {
      spec.exclude = true;
      body = body.substr(exclude.size());
    }
    spec.parts = split_dots(body);
    for (const auto& part : spec.parts)
      if (part.empty()) throw ConfigError(what_ + ": empty part in spec '" + raw + "'");
    specs_.push_back(std::move(spec));
  }
}

bool ParamFilter::spec_matches_path(const Spec& spec, const std::string& path) {
  return match_parts(spec.parts, 0, split_dots(path), 0) ||
         match_parts(spec.parts, 0, split_dots(stacked_path(path)), 0);
}

bool ParamFilter::selects(const std::string& path) const {
  bool selected = false;
  for (const auto& spec : specs_)
    if (spec_matches_path(spec, path)) selected = !spec.exclude;
  return selected;
}

void ParamFilter::check_every_spec_matches(const std::vector<std::string>& paths) const {
  for (size_t i = 0; i < specs_.size(); ++i) {
    bool any = false;
    for (const auto& path : paths) any = any || spec_matches_path(specs_[i], path);
    if (!any) throw ConfigError(what_ + ": spec '" + raw_[i] + "' matches no parameter");
  }
}

}  // namespace ttt

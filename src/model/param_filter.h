// Selection of parameters by the reference's glob specs (`training.spec_inner`, `spec_outer`):
// dot-separated parts where `*` matches one part, `**` any number (at least one) of parts, a
// number matches a layer index, anything else matches literally; a spec prefixed with
// "exclude " removes what it matches. Specs apply in order; the last matching one decides.
//
// The reference stacks layers along a leading axis, so its paths carry no layer index. A spec is
// matched against both the path with the index (`...blocks.3.feed_forward...`) and without it
// (`...blocks.feed_forward...`), so every official spec selects exactly what it selects there and
// a spec may also name single layers.
#pragma once

#include <string>
#include <vector>

namespace ttt {

class ParamFilter {
 public:
  // `what` names the spec list in errors ("training.spec_inner").
  ParamFilter(std::vector<std::string> specs, std::string what);

  // Whether the parameter with this dotted path is selected.
  bool selects(const std::string& path) const;

  // Throws ConfigError naming the first spec that selects none of `paths`.
  void check_every_spec_matches(const std::vector<std::string>& paths) const;

 private:
  struct Spec {
    bool exclude = false;
    std::vector<std::string> parts;
  };
  static bool spec_matches_path(const Spec& spec, const std::string& path);
  std::vector<Spec> specs_;
  std::vector<std::string> raw_;
  std::string what_;
};

// The path with layer-index parts removed: the reference's stacked-pytree path.
std::string stacked_path(const std::string& path);

}  // namespace ttt

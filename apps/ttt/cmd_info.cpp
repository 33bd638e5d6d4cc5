// `ttt info`: the fully resolved configuration and the parameter counts of the model it describes,
// computed from shapes alone (no weights are allocated, so 3B configs print instantly).
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "config/fields.h"
#include "config/loader.h"
#include "model/param_layout.h"

namespace ttt::cli {
namespace {

std::string human(int64_t n) {
  char buf[32];
  if (n >= 1000000000)
    std::snprintf(buf, sizeof(buf), "%.2fB", n / 1e9);
  else if (n >= 1000000)
    std::snprintf(buf, sizeof(buf), "%.2fM", n / 1e6);
  else if (n >= 1000)
    std::snprintf(buf, sizeof(buf), "%.2fK", n / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(n));
  return buf;
}

}  // namespace

Run add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print the resolved configuration and the model's parameter counts");
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto unused_fields = std::make_shared<bool>(false);
  cmd->add_flag("--unused-fields", *unused_fields,
                "Print the Markdown table of the fields kept for parity with the official configuration or "
                "supported at their default only (docs/configuration.md holds it)");
  add_overrides_option(*cmd, *overrides);
  return [overrides, unused_fields]() {
    if (*unused_fields) {
      std::cout << unused_fields_markdown();
      return 0;
    }
    const Config config = load_config(*overrides);
    const ParamCounts counts = count_params(config);
    std::cout << "# configuration tree: " << find_config_dir() << "\n" << to_yaml(config) << "\n";
    std::cout << "# parameters\n";
    std::cout << "total: " << counts.total << "  # " << human(counts.total) << "\n";
    std::cout << "non_embedding: " << counts.non_embedding << "  # " << human(counts.non_embedding) << "\n";
    std::cout << "embedding: " << counts.embedding << "  # " << human(counts.embedding) << "\n";
    std::cout << "inner: " << counts.inner << "  # " << human(counts.inner)
              << (config.training.train_mode == TrainMode::kMeta ? "  (fast weights, training.spec_inner)"
                                                                 : "  (pretrain mode: none)")
              << "\n";
    std::cout << "outer: " << counts.outer << "  # " << human(counts.outer) << "  (training.spec_outer)\n";
    return 0;
  };
}

}  // namespace ttt::cli

// `ttt info`: the fully resolved configuration and the parameter counts of the model it describes,
// computed from shapes alone (no weights are allocated, so 3B configs print instantly).
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "config/fields.h"
#include "config/loader.h"
#include "model/param_layout.h"
#include "train/memory_estimate.h"

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

// The per-rank training memory as YAML-style comment lines under "# memory per rank".
void print_memory_estimate(const Config& config, int64_t world_size, const std::string& device_memory) {
  const MemoryEstimate e = estimate_training_memory(config, world_size);
  const auto line = [](const char* what, double bytes, const std::string& note) {
    std::printf("%-17s %12s%s\n", what, format_bytes(bytes).c_str(), note.empty() ? "" : ("  # " + note).c_str());
  };
  std::cout << "\n# memory per rank (estimate: scripts/bench_memory.sh measures its error)\n";
  std::cout << "world_size: " << world_size << "  # " << e.sequences_per_micro_batch << " sequence(s) of "
            << config.training.seq_length << " tokens per rank and micro-batch\n";
  line("parameters:", e.parameters, to_string(config.model.param_dtype));
  line("gradients:", e.gradients, "");
  line("optimizer_state:", e.optimizer_state, "AdamW moments");
  line("gradient_buckets:", e.gradient_buckets, world_size > 1 ? "all-reduce buffers" : "single process: none");
  line("activations:", e.activations, "peak: " + e.activation_peak);
  line("total:", e.total(), "");
  if (!device_memory.empty()) {
    const double capacity = parse_byte_size(device_memory, "--device-memory");
    const char* verdict = e.total() > capacity                            ? "no"
                          : e.total() * kMemoryEstimateMargin <= capacity ? "yes"
                                                                          : "uncertain (within the estimate's error)";
    std::cout << "fits: " << verdict << "  # " << format_bytes(e.total()) << " of " << format_bytes(capacity) << "\n";
  }
}

}  // namespace

Run add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print the resolved configuration and the model's parameter counts");
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto unused_fields = std::make_shared<bool>(false);
  cmd->add_flag("--unused-fields", *unused_fields,
                "Print the Markdown table of the fields kept for parity with the official configuration or "
                "supported at their default only (docs/configuration.md holds it)");
  auto world_size = std::make_shared<int64_t>(0);
  auto device_memory = std::make_shared<std::string>();
  cmd->add_option("--world-size", *world_size,
                  "Also print the memory each of N data-parallel ranks needs to train this configuration");
  cmd->add_option("--device-memory", *device_memory,
                  "With --world-size: say whether that fits in this much memory per device (e.g. 80GiB)");
  add_overrides_option(*cmd, *overrides);
  return [overrides, unused_fields, world_size, device_memory]() {
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
    if (!device_memory->empty() && *world_size == 0)
      throw ConfigError("--device-memory needs --world-size (the number of data-parallel ranks)");
    if (*world_size == 0) return 0;
    if (*world_size < 0) throw ConfigError("--world-size must be positive");
    print_memory_estimate(config, *world_size, *device_memory);
    return 0;
  };
}

}  // namespace ttt::cli

// `ttt bench`: inference latency against context length for the FA, SWA, E2E and TTT-layer variants of one
// model size (random weights): prefill seconds per 1K tokens, decode ms per token after a prefill
// of each length, and each case's peak memory (every case runs in its own child process); or the
// saved results of earlier runs. --plot draws them.
#include <iostream>

#include "commands.h"
#include "infer/latency_bench.h"
#include "infer/latency_report.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace ttt::cli {
namespace {

struct BenchArgs {
  std::string size = "tiny";
  std::string variants = "fa,swa,e2e";
  int64_t min_context = 1024;
  int64_t max_context = 32768;
  int64_t decode_tokens = 128;
  uint64_t seed = 0;
  bool json = false;
  bool in_process = false;
  std::string plot_dir;
  std::vector<std::string> from;
  std::vector<std::string> overrides;
};

std::vector<LatencyResult> measure(const BenchArgs& args) {
  if (args.min_context < 2 || args.max_context < args.min_context)
    throw std::invalid_argument("--min-context must be >= 2 and <= --max-context");
  // Configurations only in this process until the cases fork: torch's thread pools do not
  // survive fork.
  const auto variants = latency_bench_variants(args.size, split(args.variants, ','), args.overrides);
  std::vector<LatencyResult> results;
  for (int64_t context : context_lengths(args.min_context, args.max_context)) {
    for (const auto& [name, config] : variants) {
      const LatencyCase c{name, config, context, args.decode_tokens, args.seed};
      results.push_back(args.in_process ? measure_latency(c) : measure_latency_isolated(c));
      const auto& r = results.back();
      std::cerr << name << " @ " << context << ": "
                << (r.error.empty() ? std::to_string(r.prefill_seconds_per_1k) + " s/1K prefill, " +
                                          std::to_string(r.decode_ms_per_token) + " ms/token decode"
                                    : "failed: " + r.error)
                << std::endl;
    }
  }
  return results;
}

// Saved `ttt bench --json` outputs as one set of results (a case in several: the later file's).
std::vector<LatencyResult> read_saved(const std::vector<std::string>& files) {
  std::vector<std::vector<LatencyResult>> runs;
  for (const auto& file : files) runs.push_back(parse_latency_results(read_file(file), file));
  return merge_latency_results(runs);
}

int run_bench(const BenchArgs& args) {
  if (!args.from.empty() && !args.overrides.empty())
    throw std::invalid_argument(
        "--from reads saved results: configuration overrides measure nothing (for several "
        "files, repeat --from before each)");
  const auto results = args.from.empty() ? measure(args) : read_saved(args.from);
  const auto summary = summarize_latency(results);
  std::cout << (args.json ? latency_results_json(results, summary) + "\n" : latency_results_table(results, summary));
  if (!args.plot_dir.empty())
    for (const auto& path : write_latency_plots(args.plot_dir, results)) std::cerr << "wrote " << path << std::endl;
  return 0;
}

}  // namespace

Run add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bench", "Inference latency vs context length: FA, SWA, E2E and TTT layers (prefill and decode)");
  auto args = std::make_shared<BenchArgs>();
  auto* size =
      cmd->add_option("--size", args->size,
                      "Model size: experiments <size>/pretrain/pretrain-<size>-{fa,swa,e2e} and the TTT-layer ones")
          ->capture_default_str();
  auto* variants =
      cmd->add_option("--variants", args->variants, "Comma-separated subset of fa,swa,e2e,ttt_linear,ttt_mlp")
          ->capture_default_str();
  auto* min_context =
      cmd->add_option("--min-context", args->min_context, "Shortest context (tokens)")->capture_default_str();
  auto* max_context =
      cmd->add_option("--max-context", args->max_context, "Longest context: lengths double from --min-context")
          ->capture_default_str();
  auto* decode_tokens =
      cmd->add_option("--decode-tokens", args->decode_tokens,
                      "Tokens decoded after each prefill (the tiny E2E model's chunk is 128: one inner step)")
          ->capture_default_str();
  auto* seed = cmd->add_option("--seed", args->seed, "Seed of the random weights and tokens")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print JSON instead of a table");
  auto* in_process = cmd->add_flag("--in-process", args->in_process,
                                   "Run every case in this process (peak memory is then cumulative)");
  cmd->add_option("--plot", args->plot_dir,
                  "Write latency_prefill.svg, latency_decode.svg and latency_fa_over_e2e.svg (ours beside the "
                  "paper's) into this directory");
  auto* from = cmd->add_option("--from", args->from,
                               "Measure nothing: read the results of earlier `ttt bench --json` runs saved to this "
                               "file (repeatable; a case in several files: the later file's)")
                   ->allow_extra_args(false)
                   ->check(CLI::ExistingFile);
  for (auto* measuring : {size, variants, min_context, max_context, decode_tokens, seed, in_process})
    from->excludes(measuring);
  add_overrides_option(*cmd, args->overrides);
  return [args]() { return run_bench(*args); };
}

}  // namespace ttt::cli

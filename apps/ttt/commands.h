// Each `ttt` subcommand registers its options on the parser and returns the function that runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace ttt::cli {

using Run = std::function<int()>;

Run add_info_command(CLI::App& app);
Run add_train_command(CLI::App& app);
Run add_tokenize_command(CLI::App& app);
Run add_prepare_command(CLI::App& app);
Run add_eval_command(CLI::App& app);
Run add_plot_command(CLI::App& app);
Run add_generate_command(CLI::App& app);
Run add_bench_command(CLI::App& app);
Run add_import_command(CLI::App& app);
Run add_export_command(CLI::App& app);

// Positional `overrides...` shared by every command that reads a configuration.
void add_overrides_option(CLI::App& command, std::vector<std::string>& overrides);

}  // namespace ttt::cli

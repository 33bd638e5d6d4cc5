// ttt <command> [options] [overrides...]: dispatches to one subcommand; all logic is in the library.
#include <c10/util/Exception.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>

#include "commands.h"
#include "config/config.h"
#include "config/loader.h"
#include "dist/process_group.h"
#include "util/runtime.h"
#include "util/strings.h"

namespace ttt::cli {

void add_overrides_option(CLI::App& command, std::vector<std::string>& overrides) {
  command.add_option("overrides", overrides,
                     "Configuration, Hydra-style: +experiment=<size>/<stage>/<name>, +deploy=interactive, "
                     "group=option (model=125m), dotted overrides key=value (training.seq_length=32768, "
                     "training.spec_inner=[a,b])");
}

}  // namespace ttt::cli

int main(int argc, char** argv) {
  ttt::prefer_passive_openmp_wait(argv);
  // A write past a file-size limit fails with EFBIG (and a message) instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"ttt: End-to-End Test-Time Training (TTT-E2E) for long-context language models"};
  app.require_subcommand(1);
  app.fallthrough();  // --config-dir before or after the subcommand
  std::string config_dir;
  app.add_option("--config-dir", config_dir,
                 "The configuration tree (default: $TTT_CONFIG_DIR, else the installed share/ttt/configs, else the "
                 "source tree's configs/)");
  std::map<CLI::App*, ttt::cli::Run> runs;
  for (auto add : {ttt::cli::add_info_command, ttt::cli::add_train_command, ttt::cli::add_tokenize_command,
                   ttt::cli::add_prepare_command, ttt::cli::add_eval_command, ttt::cli::add_plot_command,
                   ttt::cli::add_generate_command, ttt::cli::add_bench_command, ttt::cli::add_import_command,
                   ttt::cli::add_export_command}) {
    auto run = add(app);
    runs[app.get_subcommands({}).back()] = run;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (!config_dir.empty()) ttt::set_config_dir(config_dir);
    for (auto* sub : app.get_subcommands()) return runs.at(sub)();
  } catch (const ttt::DistError& e) {
    // A peer is lost: leave now, without the destructors that would wait on it.
    std::cerr << "error: " << ttt::first_line(e.what()) << std::endl;
    std::_Exit(1);
  } catch (const ttt::ConfigError& e) {
    std::cerr << "config error: " << e.what() << std::endl;
    return 2;
  } catch (const c10::Error& e) {
    // Bad input is caught where it is read; this is the last line of defence: LibTorch's message
    // without its backtrace.
    std::cerr << "error: " << ttt::first_line(e.what_without_backtrace()) << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << ttt::first_line(e.what()) << std::endl;
    return 1;
  }
  return 0;
}

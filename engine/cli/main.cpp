// The `latte` command line: global flags and one subcommand per file (commands.h).
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <memory>

#include "engine/cli/commands.h"
#include "engine/cli/runtime_environment.h"
#include "engine/dist/distributed.h"
#include "engine/error.h"
#include "engine/version.h"

int main(int argc, char** argv) {
  latte::cli::configure_runtime_environment(argv);
  CLI::App app{"latte: train and compare DeepSeek-V3-style attention variants"};
  app.set_version_flag("--version", std::string("latte ") + latte::kVersion);
  app.require_subcommand(0, 1);
  for (const auto& add_command : latte::cli::all_commands()) add_command(app);
  // MPI when a launcher started this process (mpirun -np N latte ...); outlives every command.
  std::unique_ptr<latte::DistributedSession> distributed;
  try {
    distributed = std::make_unique<latte::DistributedSession>();
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const latte::cli::ExitWith& e) {
    return e.code;
  } catch (const latte::Error& e) {
    std::cerr << "latte: error: " << e.what() << "\n";
    latte::DistributedSession::abort_job(1);  // the other ranks may wait for this one
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "latte: error: " << e.what() << "\n";
    latte::DistributedSession::abort_job(1);
    return 1;
  }
  if (app.get_subcommands().empty()) std::cout << app.help();
  return 0;
}

// `latte suite SUITE.toml [--scale smoke|cpu|seed|gpu] [--repeats N] [--only a,b]
// [--device cpu|cuda]`: trains every variant of an experiment and writes the report. --device is
// train.device for every variant, applied after the scale and every --set.
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/dist/distributed.h"
#include "engine/train/suite.h"
#include "engine/train/trainer.h"

namespace latte::cli {

void add_suite_command(CLI::App& app) {
  auto suite_file = std::make_shared<std::string>();
  auto options = std::make_shared<SuiteOptions>();
  auto no_progress = std::make_shared<bool>(false);
  auto no_plots = std::make_shared<bool>(false);
  auto device = std::make_shared<std::string>();
  auto* cmd =
      app.add_subcommand("suite", "Train every variant of an experiment and write the report");
  cmd->add_option("suite", *suite_file, "Suite file (TOML), e.g. configs/exp3/suite.toml")
      ->required();
  cmd->add_option("--scale", options->scale,
                  "A [scales.NAME] of the suite (default: its default_scale)");
  cmd->add_option("--repeats", options->repeats, "Seeds per variant")->capture_default_str();
  cmd->add_option("--only", options->only, "Only these variants")->delimiter(',');
  cmd->add_option("--set", options->overrides, "Override a config key of every variant");
  cmd->add_option("--out", options->output_dir, "Suite folder (default: output_dir/<scale>)");
  cmd->add_option("--device", *device, "cpu or cuda (train.device of every variant)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_flag("--no-progress", *no_progress, "No live progress output");
  cmd->add_flag("--no-plots", *no_plots, "Skip the PNG plots");
  cmd->add_flag("--profile", options->profile, "Print each run's step time split");
  cmd->add_flag(
      "--profile-host", options->profile_host,
      "--profile on the host clock: on CUDA, where the host spends its time issuing work");
  cmd->callback([suite_file, options, no_progress, no_plots, device] {
    if (!device->empty()) options->overrides.push_back("train.device=\"" + *device + "\"");
    options->progress = !*no_progress;
    options->plots = !*no_plots;
    install_stop_handlers();
    auto comm = make_communicator();
    const SuiteResult r = run_suite(*suite_file, *options, *comm);
    if (r.results.is_null()) {
      if (comm->is_root())
        std::cout << "suite interrupted; run the same command again to resume (" << r.dir << ")\n";
      throw ExitWith{130};
    }
    if (comm->is_root()) std::cout << "report: " << r.dir << "/report.md\n";
  });
}

}  // namespace latte::cli

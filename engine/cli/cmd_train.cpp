// `latte train CONFIG [--set k=v]... [--device cpu|cuda]` and `latte train --resume RUN_DIR`:
// one training run. --device is train.device, applied after every --set (a run may resume on
// another device: checkpoints do not depend on it).
#include <filesystem>
#include <fstream>
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/dist/distributed.h"
#include "engine/train/trainer.h"

namespace latte::cli {

namespace {

struct TrainArgs {
  std::string config, resume, device;
  std::vector<std::string> overrides;
  bool profile = false, profile_host = false, no_progress = false;
  int64_t stop_after = 0;
};

RunConfig config_of_run(const std::string& run_dir, const std::vector<std::string>& overrides) {
  const std::string path = (std::filesystem::path(run_dir) / "config.json").string();
  std::ifstream in(path);
  LATTE_CHECK(in.good()) << "--resume " << run_dir << ": no config.json (is it a run folder?)";
  nlohmann::json json;
  try {
    in >> json;
  } catch (const nlohmann::json::exception& e) {
    LATTE_FAIL() << path << ": invalid JSON (" << e.what() << ")";
  }
  ConfigDocument doc = ConfigDocument::from_json(json, path);
  doc.apply_overrides(overrides);
  return load_run_config(doc);
}

void run_train(const TrainArgs& args) {
  LATTE_CHECK(args.config.empty() != args.resume.empty())
      << "train: give either CONFIG or --resume RUN_DIR";
  std::vector<std::string> overrides =
      args.resume.empty() ? args.overrides : std::vector<std::string>{};
  if (!args.device.empty()) overrides.push_back("train.device=\"" + args.device + "\"");
  RunConfig config = args.resume.empty() ? load_run_config(args.config, overrides)
                                         : config_of_run(args.resume, overrides);
  if (!args.resume.empty()) config.output.dir = args.resume;
  install_stop_handlers();
  auto comm = make_communicator();
  TrainOptions options;
  options.resume = !args.resume.empty();
  options.progress = !args.no_progress;
  options.profile = args.profile;
  options.profile_host = args.profile_host;
  options.stop_after = args.stop_after;
  const TrainSummary s = train(config, options, *comm);
  if (comm->is_root())
    std::cout << config.name << ": " << s.status << " at step " << s.steps << ", train loss "
              << s.final_train_loss << ", best val loss " << s.best_val_loss << " -> "
              << config.output.dir << "\n";
  if (s.status != "completed") throw ExitWith{130};
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train one model configuration");
  cmd->add_option("config", args->config, "Run config (TOML)");
  cmd->add_option("--resume", args->resume,
                  "Continue the run in this folder from its last checkpoint");
  cmd->add_option("--set", args->overrides, "Override a config key: section.key=value");
  cmd->add_option("--device", args->device, "cpu or cuda (train.device)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_flag("--profile", args->profile, "Print the step time split at the end");
  cmd->add_flag(
      "--profile-host", args->profile_host,
      "--profile on the host clock: on CUDA, where the host spends its time issuing work");
  cmd->add_flag("--no-progress", args->no_progress, "No live progress output");
  cmd->add_option("--stop-after", args->stop_after,
                  "Stop (checkpoint, exit 130) after this many steps, as if interrupted");
  cmd->callback([args] { run_train(*args); });
}

}  // namespace latte::cli

// `latte config show FILE [--set k=v]...`: validates a run config and prints it fully resolved
// (inherit chain merged, overrides applied) as TOML.
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/train/run_config.h"

namespace latte::cli {

void add_config_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("config", "Inspect configuration files");
  cmd->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto* show = cmd->add_subcommand("show", "Print the fully resolved config (after validation)");
  show->add_option("file", *file, "Run config (TOML)")->required();
  show->add_option("--set", *overrides, "Override a config key: section.key=value");
  show->callback([file, overrides] {
    ConfigDocument doc = ConfigDocument::load(*file);
    doc.apply_overrides(*overrides);
    load_run_config(doc);  // the same validation as `latte train`
    std::cout << doc.to_toml();
  });
}

}  // namespace latte::cli

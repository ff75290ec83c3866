#include "engine/cli/commands.h"

namespace latte::cli {

const std::vector<AddCommand>& all_commands() {
  static const std::vector<AddCommand> commands = {
      add_suite_command, add_train_command,  add_forward_command, add_stats_command,
      add_data_command,  add_config_command, add_bench_command};
  return commands;
}

}  // namespace latte::cli

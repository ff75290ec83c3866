// Registry of latte subcommands. Each subcommand lives in its own cmd_*.cpp and exposes one
// function that adds itself (options and callback) to the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace latte::cli {

using AddCommand = std::function<void(CLI::App&)>;

// Thrown by a subcommand that finished without an error message but must set the exit status
// (e.g. 130 after an interrupted run that saved its checkpoint).
struct ExitWith {
  int code;
};

// Every subcommand, in the order `latte --help` lists them. Defined in commands.cpp.
const std::vector<AddCommand>& all_commands();

void add_data_command(CLI::App& app);     // cmd_data.cpp
void add_bench_command(CLI::App& app);    // cmd_bench.cpp
void add_forward_command(CLI::App& app);  // cmd_forward.cpp
void add_train_command(CLI::App& app);    // cmd_train.cpp
void add_suite_command(CLI::App& app);    // cmd_suite.cpp
void add_config_command(CLI::App& app);   // cmd_config.cpp
void add_stats_command(CLI::App& app);    // cmd_stats.cpp

}  // namespace latte::cli

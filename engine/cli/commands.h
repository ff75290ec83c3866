// Registry of latte subcommands. Each subcommand lives in its own cmd_*.cpp and exposes one
// function that adds itself (options and callback) to the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace latte::cli {

using AddCommand = std::function<void(CLI::App&)>;

// Every subcommand, in the order `latte --help` lists them. Defined in commands.cpp.
const std::vector<AddCommand>& all_commands();

void add_data_command(CLI::App& app);  // cmd_data.cpp

}  // namespace latte::cli

// Running the latte executable from tests: captures the exit code and combined output.
#pragma once

#include <string>

namespace latte::test {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `latte <args>` (the binary this test build produced) through the shell.
CommandResult run_latte(const std::string& args);
// Runs an arbitrary shell command line.
CommandResult run_shell(const std::string& command);

}  // namespace latte::test

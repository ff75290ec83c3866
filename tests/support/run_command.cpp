#include "support/run_command.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>

namespace latte::test {

CommandResult run_shell(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

CommandResult run_latte(const std::string& args) {
  return run_shell(std::string("'") + LATTE_BINARY + "' " + args);
}

}  // namespace latte::test

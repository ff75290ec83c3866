// `latte bench memory`: every memory-bound op runs and reports a positive bandwidth against the
// copy measured first in the same run.
#include <doctest/doctest.h>

#include <map>
#include <sstream>
#include <string>

#include "support/run_command.h"

TEST_CASE("latte bench memory reports each op's bandwidth against the same run's copy") {
  const latte::test::CommandResult r = latte::test::run_latte("bench memory --quick --repeats 1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::map<std::string, std::map<std::string, double>> rows;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("BENCH name=mem_", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    std::string name;
    std::map<std::string, double> values;
    for (std::string field; fields >> field;) {
      const size_t eq = field.find('=');
      if (field.substr(0, eq) == "name")
        name = field.substr(eq + 1);
      else
        values[field.substr(0, eq)] = std::stod(field.substr(eq + 1));
    }
    rows[name] = values;
  }
  for (const char* op :
       {"mem_copy", "mem_add", "mem_add_", "mem_fill", "mem_swiglu_fwd", "mem_rms_norm_fwd",
        "mem_rope_fwd", "mem_embedding_fwd", "mem_swiglu_fwd_bwd", "mem_rms_norm_fwd_bwd",
        "mem_rope_fwd_bwd", "mem_embedding_fwd_bwd"}) {
    INFO(op);
    REQUIRE(rows.count(op) == 1);
    CHECK(rows[op]["ms"] > 0);
    CHECK(rows[op]["gbps"] > 0);
    CHECK(rows[op]["of_copy"] > 0);
  }
  CHECK(rows["mem_copy"]["of_copy"] == doctest::Approx(1.0));
}

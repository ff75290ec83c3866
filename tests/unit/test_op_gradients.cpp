// Every entry of the op table: autograd gradients against central finite differences in double.
// Tolerance 1e-6 relative to each gradient's largest magnitude: with eps = 1e-6 the central
// difference has truncation error ~eps² and rounding error ~1e-16/eps ≈ 1e-10, so a correct
// backward agrees to ~1e-8; a wrong one is off by O(1).
#include <doctest/doctest.h>

#include "support/gradcheck.h"
#include "support/op_table.h"

using namespace latte;

TEST_CASE("every op's gradient matches finite differences in double") {
  for (const auto& c : test::op_cases()) {
    SUBCASE(c.name.c_str()) {
      for (unsigned seed : {1u, 2u}) {
        const auto inputs = test::make_inputs(c, DType::F64, seed);
        const auto r = test::gradcheck(c.fn, inputs);
        INFO(c.name << " seed " << seed << ": worst " << r.worst);
        CHECK(r.max_relative_error < 1e-6);
      }
    }
  }
}

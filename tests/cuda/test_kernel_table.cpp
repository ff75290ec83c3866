// Runs every case of the CUDA kernel table (kernel_case.h), one test per op family, and reports
// each mismatching output with the case's name.
#include <doctest/doctest.h>

#include <exception>
#include <string>

#include "cuda/kernel_case.h"

namespace latte::test {

namespace {

void run_all(const std::vector<KernelCase>& cases) {
  REQUIRE(!cases.empty());
  for (const KernelCase& c : cases) {
    Checks checks;
    try {
      c.run(checks);
    } catch (const std::exception& e) {
      checks.expect("run", std::string("threw: ") + e.what());
    }
    for (const std::string& failure : checks.failures()) {
      const std::string message = c.name + ": " + failure;
      FAIL_CHECK(message);
    }
    CHECK_MESSAGE(checks.failures().empty(), c.name);
  }
}

}  // namespace

TEST_CASE("cuda attention kernels match the CPU twins") {
  run_all(attention_cases());
}
TEST_CASE("cuda row-wise kernels match the CPU twins") {
  run_all(rowwise_cases());
}
TEST_CASE("cuda optimizer kernels match the CPU twins") {
  run_all(optimizer_cases());
}
TEST_CASE("cuda MoE kernels match the CPU twins") {
  run_all(moe_cases());
}
TEST_CASE("cuda GEMMs match the CPU twins") {
  run_all(gemm_cases());
}
TEST_CASE("cuda elementwise kernels match the CPU twins") {
  run_all(elementwise_cases());
}
TEST_CASE("cuda dropout draws the CPU twin's mask") {
  run_all(dropout_cases());
}
TEST_CASE("cuda copy kernels match the CPU twins") {
  run_all(copy_cases());
}

}  // namespace latte::test

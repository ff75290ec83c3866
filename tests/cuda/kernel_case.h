// The table of CUDA kernel cases (in the spirit of ggml's test-backend-ops): each case runs a
// CUDA kernel and its CPU twin on the same random inputs and records every output that does not
// match within the tolerance stated in the case. One function per op family returns its cases;
// the tests in kernel_table_test.cpp run them, and adding a kernel means adding entries.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace latte::test {

// The outcome of one case: the outputs that did not match, with the reason.
class Checks {
 public:
  // Records `output` as failed when `report` (a mismatch_report, cuda_test_support.h) is not
  // empty.
  void expect(const std::string& output, const std::string& report) {
    if (!report.empty()) failures_.push_back(output + ": " + report);
  }
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  std::vector<std::string> failures_;
};

struct KernelCase {
  std::string name;
  std::function<void(Checks&)> run;
};

std::vector<KernelCase> attention_cases();
std::vector<KernelCase> rowwise_cases();    // rope, rms_norm, softmax, activations, embedding, CE
std::vector<KernelCase> optimizer_cases();  // adamw, global grad norm
std::vector<KernelCase> moe_cases();        // routing, dispatch, combine, balance
std::vector<KernelCase> gemm_cases();
std::vector<KernelCase> elementwise_cases();  // binary ops, scale, add_inplace, sums
std::vector<KernelCase> dropout_cases();
std::vector<KernelCase> copy_cases();  // strided_copy (dtype casts), fill

}  // namespace latte::test

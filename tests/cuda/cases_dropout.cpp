// Dropout cases: the CUDA kernel must drop exactly the elements the CPU twin drops for the same
// (seed, offset), so that CPU and GPU training runs draw the same masks; f32 and bf16, counters
// beyond 2^32.
#include <cmath>
#include <string>

#include "cuda/cuda_test_support.h"
#include "cuda/kernel_case.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cpu/random.h"
#include "kernels/cuda/dropout.cuh"

namespace latte::test {

namespace {

// Masks and outputs are exact: the keep decision is an integer comparison equivalent to the
// CPU's, a float output is the same single product, and a bf16 one is that product (in fp32) of
// the bf16 input and 1/(1-p) rounded to bf16, rounded once.
template <typename T>
void run_dropout(double p, uint64_t seed, uint64_t offset, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  const int64_t n = 100003;  // not a multiple of the block size
  const std::vector<float> x = random_input<T>(rng, n);
  std::vector<float> y_ref(n), mask_ref(n);
  kernels::cpu::dropout_forward<float>(x.data(), y_ref.data(), mask_ref.data(), n, p, seed, offset);
  if constexpr (!std::is_same_v<T, float>) {
    const float keep = round_bf16({static_cast<float>(1.0 / (1.0 - p))})[0];
    for (int64_t i = 0; i < n; ++i) {
      mask_ref[i] = mask_ref[i] != 0.f ? keep : 0.f;
      y_ref[i] = x[i] * mask_ref[i];
    }
    y_ref = round_bf16(y_ref);
  }
  // The CPU twin itself must drop about a fraction p (binomial: 5 standard deviations).
  int64_t dropped = 0;
  for (float m : mask_ref) dropped += m == 0.f;
  const double sd = std::sqrt(n * p * (1 - p));
  checks.expect("dropped fraction", std::abs(static_cast<double>(dropped) - n * p) <= 5 * sd
                                        ? ""
                                        : "the CPU twin dropped " + std::to_string(dropped) +
                                              " of " + std::to_string(n));
  DeviceBuffer<T> gx(as_type<T>(x)), gy(n), gmask(n);
  kernels::cuda::dropout_forward<T>(gx.get(), gy.get(), gmask.get(), n, p, seed, offset,
                                    cuda::stream());
  checks.expect("mask", mismatch_report(as_float(gmask.download()), mask_ref, 0, 0));
  checks.expect("y", mismatch_report(as_float(gy.download()), y_ref, 0, 0));
}

template <typename T>
void add_cases(std::vector<KernelCase>& cases, const std::string& type) {
  struct Draw {
    double p;
    uint64_t seed, offset;
  };
  for (const Draw d :
       {Draw{0.1, 1234, 0}, Draw{0.5, 0x9e3779b97f4a7c15ull, (uint64_t(1) << 40) + 7},
        Draw{0.9, 7, 123456789}})
    cases.push_back(
        {"dropout " + type + " p=" + std::to_string(d.p) + " offset " + std::to_string(d.offset),
         [=](Checks& c) { run_dropout<T>(d.p, d.seed, d.offset, c); }});
}

}  // namespace

std::vector<KernelCase> dropout_cases() {
  std::vector<KernelCase> cases;
  add_cases<float>(cases, "f32");
  add_cases<bf16>(cases, "bf16");
  return cases;
}

}  // namespace latte::test

// Optimizer cases: multi-tensor AdamW over more tensors than one launch holds (every other one
// with a bf16 compute copy), and the deterministic global sum of squares, against the CPU AdamW
// update and sum_squares.
#include <memory>
#include <string>

#include "cuda/cuda_test_support.h"
#include "cuda/kernel_case.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/adamw.cuh"
#include "kernels/cuda/grad_norm.cuh"

namespace latte::test {

namespace {

// Tensor sizes: empty, smaller than a chunk, exactly a chunk, several chunks with a tail.
std::vector<int64_t> tensor_sizes(int64_t count) {
  const int64_t pattern[] = {0, 1, 37, 4096, 10000, 300};
  std::vector<int64_t> sizes(count);
  for (int64_t i = 0; i < count; ++i) sizes[i] = pattern[i % 6] + i;
  return sizes;
}

// float: the same fp32 formula; a fused multiply-add in the moments moves results by an ulp or
// two: 1e-6 relative, 1e-7 absolute (parameters and moments are O(1) and O(1e-3)). A compute copy
// is the kernel's own updated parameter rounded to bf16: exact.
template <typename G>
void run_adamw(Checks& checks) {
  std::mt19937 rng(41);
  const int64_t count = kernels::cuda::kAdamWTensorsPerLaunch + 13;  // two launches
  const std::vector<int64_t> sizes = tensor_sizes(count);
  const kernels::cpu::AdamWStep step{1e-3, 0.9, 0.95, 1e-8, 0.1, 0.7, 3};
  std::vector<std::vector<float>> p(count), g(count), m(count), v(count);
  std::vector<std::unique_ptr<DeviceBuffer<float>>> gp, gm, gv;
  std::vector<std::unique_ptr<DeviceBuffer<G>>> gg;
  std::vector<std::unique_ptr<DeviceBuffer<bf16>>> copies(count);
  std::vector<kernels::cuda::AdamWTensor<G>> list;
  for (int64_t i = 0; i < count; ++i) {
    const size_t n = sizes[i];
    p[i] = uniform(rng, n);
    g[i] = random_input<G>(rng, n);
    m[i] = uniform(rng, n, -0.1f, 0.1f);
    v[i] = uniform(rng, n, 0.f, 0.01f);
    gp.push_back(std::make_unique<DeviceBuffer<float>>(p[i]));
    gg.push_back(std::make_unique<DeviceBuffer<G>>(as_type<G>(g[i])));
    gm.push_back(std::make_unique<DeviceBuffer<float>>(m[i]));
    gv.push_back(std::make_unique<DeviceBuffer<float>>(v[i]));
    list.push_back({gp[i]->get(), gg[i]->get(), gm[i]->get(), gv[i]->get(), sizes[i]});
    if (i % 2 == 1) {
      copies[i] = std::make_unique<DeviceBuffer<bf16>>(as_type<bf16>(std::vector<float>(n, 9.f)));
      list.back().compute_copy = copies[i]->get();
    }
    kernels::cpu::adamw_update<float>(p[i].data(), g[i].data(), m[i].data(), v[i].data(), sizes[i],
                                      step);
  }
  kernels::cuda::adamw_update<G>(list.data(), count, step, cuda::stream());
  for (int64_t i = 0; i < count; ++i) {
    const std::string at = " of tensor " + std::to_string(i);
    checks.expect("param" + at, mismatch_report(gp[i]->download(), p[i], 1e-6, 1e-7));
    checks.expect("m" + at, mismatch_report(gm[i]->download(), m[i], 1e-6, 1e-7));
    checks.expect("v" + at, mismatch_report(gv[i]->download(), v[i], 1e-6, 1e-9));
    if (copies[i])
      checks.expect("compute copy" + at, mismatch_report(as_float(copies[i]->download()),
                                                         round_bf16(gp[i]->download()), 0, 0));
  }
}

// Both sides sum squares in double, in different orders: 1e-12 relative. `offset` starts every
// tensor that many elements into its buffer (1: not 16-byte aligned, single-element loads).
template <typename G>
void run_sum_squares(int64_t count, Checks& checks, int64_t offset = 0) {
  std::mt19937 rng(static_cast<unsigned>(43 + count));
  const std::vector<int64_t> sizes = tensor_sizes(count);
  std::vector<std::unique_ptr<DeviceBuffer<G>>> buffers;
  std::vector<kernels::cuda::GradTensor<G>> list;
  double want = 0;
  for (int64_t i = 0; i < count; ++i) {
    const std::vector<float> x = random_input<G>(rng, sizes[i]);
    want += kernels::cpu::sum_squares<float>(x.data(), sizes[i]);
    std::vector<float> padded(offset, 99.f);  // not summed
    padded.insert(padded.end(), x.begin(), x.end());
    buffers.push_back(std::make_unique<DeviceBuffer<G>>(as_type<G>(padded)));
    list.push_back({buffers.back()->get() + offset, sizes[i]});
  }
  DeviceBuffer<double> workspace(kernels::cuda::kGradNormPartials), out(1);
  kernels::cuda::global_sum_squares<G>(list.data(), count, workspace.get(), out.get(),
                                       cuda::stream());
  const double first = out.download()[0];
  checks.expect("sum of squares", mismatch_report(std::vector<double>{first}, {want}, 1e-12, 0));
  // Run to run, the result is bit-identical.
  kernels::cuda::global_sum_squares<G>(list.data(), count, workspace.get(), out.get(),
                                       cuda::stream());
  checks.expect("sum of squares, second run", mismatch_report(out.download(), {first}, 0, 0));
}

}  // namespace

std::vector<KernelCase> optimizer_cases() {
  return {
      {"adamw multi-tensor f32 grads", [](Checks& c) { run_adamw<float>(c); }},
      {"adamw multi-tensor bf16 grads", [](Checks& c) { run_adamw<bf16>(c); }},
      {"global sum of squares f32, 7 tensors", [](Checks& c) { run_sum_squares<float>(7, c); }},
      {"global sum of squares f32, 300 tensors (3 launches)",
       [](Checks& c) { run_sum_squares<float>(300, c); }},
      {"global sum of squares bf16", [](Checks& c) { run_sum_squares<bf16>(20, c); }},
      {"global sum of squares f32, unaligned tensors",
       [](Checks& c) { run_sum_squares<float>(7, c, 1); }},
      {"global sum of squares of nothing", [](Checks& c) { run_sum_squares<float>(0, c); }},
  };
}

}  // namespace latte::test

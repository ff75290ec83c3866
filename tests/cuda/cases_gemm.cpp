// GEMM cases: cuBLAS / cuBLASLt wrappers (every transpose combination, padded leading
// dimensions, alpha and beta, problems sharing one size class's algorithm, strided batches with a
// shared operand, the bias epilogue, bf16 operands with an fp32 result) against the CPU's
// OpenBLAS GEMM.
#include <string>

#include "cuda/cuda_test_support.h"
#include "cuda/kernel_case.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/gemm.cuh"

namespace latte::test {

namespace {

// By the result's type (the inputs are exact in the operands' type on both sides). float: cuBLAS
// accumulates in full fp32 (TF32 stays off) in another summation order than OpenBLAS: 1e-5
// relative to the element and to the result's scale. bf16: fp32 accumulation, then one output
// rounding.
template <typename T>
constexpr double gemm_rtol() {
  return std::is_same_v<T, float> ? 1e-5 : kBf16Rounding;
}
template <typename T>
constexpr double gemm_atol_scale() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-4;
}

// A row-major [rows, cols] operand with leading dimension cols + pad.
struct Matrix {
  int64_t rows, cols, ld;
  int64_t size() const { return rows > 0 ? (rows - 1) * ld + cols : 0; }
};

// Operands T, result C (T, or float for bf16 operands).
template <typename T, typename C = T>
void run_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(m * 100 + n * 10 + k + ta * 2 + tb));
  const Matrix a{ta ? k : m, ta ? m : k, (ta ? m : k) + 3};
  const Matrix b{tb ? n : k, tb ? k : n, (tb ? k : n) + 5};
  const Matrix c{m, n, n + 2};
  const std::vector<float> av = random_input<T>(rng, a.size()), bv = random_input<T>(rng, b.size());
  std::vector<float> c_ref = random_input<C>(rng, c.size());
  DeviceBuffer<T> ga(as_type<T>(av)), gb(as_type<T>(bv));
  DeviceBuffer<C> gc(as_type<C>(c_ref));
  const float alpha = 0.7f, beta = 0.3f;
  kernels::cpu::gemm<float>(ta, tb, m, n, k, alpha, av.data(), a.ld, bv.data(), b.ld, beta,
                            c_ref.data(), c.ld);
  kernels::cuda::gemm<T, C>(cuda::blas(), cuda::stream(), ta, tb, m, n, k, alpha, ga.get(), a.ld,
                            gb.get(), b.ld, beta, gc.get(), c.ld);
  checks.expect("c", mismatch_report(as_float(gc.download()), c_ref, gemm_rtol<C>(),
                                     gemm_atol_scale<C>() * max_abs(c_ref)));
}

template <typename T>
void run_gemm_batched(Checks& checks) {
  std::mt19937 rng(91);
  const int64_t batch = 3, m = 20, n = 24, k = 40;
  // A per batch; B shared (stride 0), transposed; C per batch.
  const std::vector<float> av = random_input<T>(rng, batch * m * k),
                           bv = random_input<T>(rng, n * k);
  std::vector<float> c_ref(batch * m * n, 0.f);
  for (int64_t i = 0; i < batch; ++i)
    kernels::cpu::gemm<float>(false, true, m, n, k, 1.f, av.data() + i * m * k, k, bv.data(), k,
                              0.f, c_ref.data() + i * m * n, n);
  DeviceBuffer<T> ga(as_type<T>(av)), gb(as_type<T>(bv)), gc(batch * m * n);
  kernels::cuda::gemm_batched<T>(cuda::blas(), cuda::stream(), false, true, batch, m, n, k, 1.f,
                                 ga.get(), k, m * k, gb.get(), k, 0, 0.f, gc.get(), n, m * n);
  checks.expect("c", mismatch_report(as_float(gc.download()), c_ref, gemm_rtol<T>(),
                                     gemm_atol_scale<T>() * max_abs(c_ref)));
}

template <typename T>
void run_gemm_bias(int64_t m, int64_t n, int64_t k, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(m + n + k));
  // x [m, k] times a weight [n, k] transposed, plus bias [n]: a linear layer.
  const std::vector<float> x = random_input<T>(rng, m * k), w = random_input<T>(rng, n * k),
                           bias = random_input<T>(rng, n);
  std::vector<float> y_ref(m * n);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) y_ref[r * n + j] = bias[j];
  kernels::cpu::gemm<float>(false, true, m, n, k, 1.f, x.data(), k, w.data(), k, 1.f, y_ref.data(),
                            n);
  DeviceBuffer<T> gx(as_type<T>(x)), gw(as_type<T>(w)), gbias(as_type<T>(bias)), gy(m * n);
  kernels::cuda::gemm_bias<T>(cuda::blas(), cuda::stream(), false, true, m, n, k, gx.get(), k,
                              gw.get(), k, gbias.get(), gy.get(), n);
  checks.expect("y", mismatch_report(as_float(gy.download()), y_ref, gemm_rtol<T>(),
                                     gemm_atol_scale<T>() * max_abs(y_ref)));
}

template <typename T>
void add_cases(std::vector<KernelCase>& cases) {
  const std::string t = std::is_same_v<T, float> ? " f32" : " bf16";
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      cases.push_back({"gemm" + t + (ta ? " At" : " A") + (tb ? "Bt" : "B"),
                       [=](Checks& c) { run_gemm<T>(ta, tb, 37, 53, 71, c); }});
  // Row counts and inner sizes of one size class (449..512 rounds to 512) after its largest
  // problem: the algorithm chosen for the class runs them all, as the experts' GEMMs do.
  for (const int64_t m : {512, 449, 500, 511})
    cases.push_back({"gemm" + t + " ABt class of 512, m " + std::to_string(m),
                     [=](Checks& c) { run_gemm<T>(false, true, m, 64, 72, c); }});
  for (const int64_t k : {512, 450, 509})
    cases.push_back({"gemm" + t + " AtB class of 512, k " + std::to_string(k),
                     [=](Checks& c) { run_gemm<T>(true, false, 96, 80, k, c); }});
  cases.push_back({"gemm_batched" + t, [](Checks& c) { run_gemm_batched<T>(c); }});
  cases.push_back(
      {"gemm_bias" + t + " 33x40x24", [](Checks& c) { run_gemm_bias<T>(33, 40, 24, c); }});
  cases.push_back({"gemm_bias" + t + " 7x13x5", [](Checks& c) { run_gemm_bias<T>(7, 13, 5, c); }});
  // The bias epilogue's algorithm is chosen per size class too: the class's largest problem first.
  for (const int64_t m : {512, 461, 503})
    cases.push_back({"gemm_bias" + t + " class of 512, m " + std::to_string(m),
                     [=](Checks& c) { run_gemm_bias<T>(m, 40, 24, c); }});
}

}  // namespace

std::vector<KernelCase> gemm_cases() {
  std::vector<KernelCase> cases;
  add_cases<float>(cases);
  add_cases<bf16>(cases);
  // bf16 operands, fp32 result: the weight gradients of mixed precision (dW = dyᵀ x), also past
  // one size class's largest problem.
  for (const int64_t k : {512, 450})
    cases.push_back({"gemm bf16 -> f32 AtB, k " + std::to_string(k),
                     [=](Checks& c) { run_gemm<bf16, float>(true, false, 96, 80, k, c); }});
  cases.push_back({"gemm bf16 -> f32 ABt",
                   [](Checks& c) { run_gemm<bf16, float>(false, true, 37, 53, 71, c); }});
  return cases;
}

}  // namespace latte::test

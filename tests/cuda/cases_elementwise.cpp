// Elementwise cases: broadcasting binary ops over strided operands, scale, add_inplace, sum_all and
// sum_to, in f32 and bf16, against the CPU twins of kernels/cpu/elementwise.h. Sizes are not
// multiples of the block nor of the vector groups (a tail), broadcasts sit in the middle
// dimensions, dense operands also start one element into their buffers (no 16-byte accesses),
// one such case is large enough for the grid-stride loop to wrap, and the sums cover the one-pass
// and the two-pass paths.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "cuda/cuda_test_support.h"
#include "cuda/kernel_case.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/elementwise.cuh"

namespace latte::test {

namespace {

using kernels::cpu::BinaryOp;
using Dims = std::vector<int64_t>;

std::string str(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

int64_t numel(const Dims& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Dims contiguous_strides(const Dims& shape) {
  Dims strides(shape.size());
  int64_t s = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

// Elements an operand read through `strides` over `shape` spans (1 + the largest offset).
size_t span(const Dims& shape, const Dims& strides) {
  int64_t last = 0;
  for (size_t d = 0; d < shape.size(); ++d) last += (shape[d] - 1) * strides[d];
  return static_cast<size_t>(last + 1);
}

// Values a T kernel writes for exact fp32 results: unchanged for float, rounded once for bf16.
template <typename T>
std::vector<float> stored(const std::vector<float>& x) {
  return is_bf16<T>() ? round_bf16(x) : x;
}

std::vector<double> widen(const std::vector<float>& x) {
  return std::vector<double>(x.begin(), x.end());
}

// ---- binary ops ----
// One fp32 operation on values both sides read exactly, then (bf16) one round-to-nearest-even on
// store on both sides: the results are identical, tolerance 0.
struct BinaryShape {
  Dims shape, a_strides, b_strides;
  Dims offsets = {0, 0, 0};  // of a, b and out in their buffers
};

template <typename T>
void run_binary(BinaryOp op, const BinaryShape& s, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(17 + s.shape.size()));
  const int64_t oa = s.offsets[0], ob = s.offsets[1], oout = s.offsets[2];
  const std::vector<float> a = random_input<T>(rng, oa + span(s.shape, s.a_strides));
  const std::vector<float> b = random_input<T>(rng, ob + span(s.shape, s.b_strides));
  const int rank = static_cast<int>(s.shape.size());
  std::vector<float> want(numel(s.shape));
  kernels::cpu::binary_op<float>(op, s.shape.data(), rank, a.data() + oa, s.a_strides.data(),
                                 b.data() + ob, s.b_strides.data(), want.data());
  DeviceBuffer<T> ga(as_type<T>(a)), gb(as_type<T>(b)), gout(oout + want.size());
  kernels::cuda::binary_op<T>(op, s.shape.data(), rank, ga.get() + oa, s.a_strides.data(),
                              gb.get() + ob, s.b_strides.data(), gout.get() + oout, cuda::stream());
  checks.expect("out", mismatch_report(as_float(gout.download(oout)), stored<T>(want), 0, 0));
}

std::vector<BinaryShape> binary_shapes() {
  return {
      // same shape, contiguous, not a multiple of the block nor of a vector group (15105 = 16 k +
      // 1)
      {{3, 5, 1007}, {5035, 1007, 1}, {5035, 1007, 1}},
      // the same with b, then out, one element into its buffer: element by element
      {{3, 5, 1007}, {5035, 1007, 1}, {5035, 1007, 1}, {0, 1, 0}},
      {{3, 5, 1007}, {5035, 1007, 1}, {5035, 1007, 1}, {0, 0, 1}},
      // broadcasts in the middle dimensions of b
      {{2, 3, 4, 5, 37}, {2220, 740, 185, 37, 1}, {148, 0, 37, 0, 1}},
      // bias row and a column vector
      {{301, 67}, {67, 1}, {0, 1}},
      {{301, 67}, {1, 301}, {1, 0}},  // a transposed view, b a column
      // scalar b, rank 6 with size-1 dimensions
      {{2, 1, 3, 4, 1, 29}, {348, 348, 116, 29, 29, 1}, {0, 0, 0, 0, 0, 0}},
      // a single element (rank 0)
      {{}, {}, {}},
  };
}

const char* op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "add";
    case BinaryOp::kSub:
      return "sub";
    case BinaryOp::kMul:
      return "mul";
  }
  return "?";
}

template <typename T>
void add_binary_cases(std::vector<KernelCase>& cases) {
  // Above 65536 blocks of 256 elements: a grid-stride loop that wraps, when a is one element in
  // (element by element); with aligned operands, a dense run of 1M vector groups.
  const Dims big = {4099, 4097}, big_strides = {4097, 1};
  std::vector<std::pair<BinaryOp, BinaryShape>> shapes = {
      {BinaryOp::kAdd, {big, big_strides, big_strides, {1, 0, 0}}},
      {BinaryOp::kAdd, {big, big_strides, big_strides}}};
  for (BinaryOp op : {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul})
    for (const BinaryShape& s : binary_shapes()) shapes.push_back({op, s});
  for (const auto& [op, s] : shapes)
    cases.push_back({std::string(op_name(op)) + " " + type_name<T>() + " " + str(s.shape) +
                         " a strides " + str(s.a_strides) + " b strides " + str(s.b_strides) +
                         (s.offsets != Dims{0, 0, 0} ? " offsets " + str(s.offsets) : ""),
                     [op, s](Checks& c) { run_binary<T>(op, s, c); }});
}

// ---- scale, add_inplace ----
// One fp32 operation each, as for the binary ops: tolerance 0.
// n not a multiple of a vector group; `offset`: x (scale) or src (add_inplace) starts one element
// into its buffer.
template <typename T>
void run_scale(int64_t offset, Checks& checks) {
  std::mt19937 rng(23);
  const int64_t n = 12345;
  const float s = 0.37f;  // not a bf16 value: the kernel must keep it in fp32
  const std::vector<float> x = random_input<T>(rng, offset + n);
  std::vector<float> want(n);
  kernels::cpu::scale<float>(x.data() + offset, want.data(), n, s);
  DeviceBuffer<T> gx(as_type<T>(x)), gout(n);
  kernels::cuda::scale<T>(gx.get() + offset, gout.get(), n, s, cuda::stream());
  checks.expect("out", mismatch_report(as_float(gout.download()), stored<T>(want), 0, 0));
}

template <typename T>
void run_add_inplace(int64_t offset, Checks& checks) {
  std::mt19937 rng(29);
  const int64_t n = 5003;
  std::vector<float> dst = random_input<T>(rng, n);
  const std::vector<float> src = random_input<T>(rng, offset + n);
  DeviceBuffer<T> gdst(as_type<T>(dst)), gsrc(as_type<T>(src));
  kernels::cpu::add_inplace<float>(dst.data(), src.data() + offset, n);
  kernels::cuda::add_inplace<T>(gdst.get(), gsrc.get() + offset, n, cuda::stream());
  checks.expect("dst", mismatch_report(as_float(gdst.download()), stored<T>(dst), 0, 0));
}

// ---- sums ----
// The CUDA sums accumulate in double and round once to T; the reference is the CPU twin run in
// double on the same values. Double sums in different orders differ by far less than
// 1e-12 · Σ|x|, so the tolerance is one rounding to T: 1.2e-7 relative (2^-24 with margin) for
// f32, kBf16Rounding for bf16.
template <typename T>
double sum_rtol() {
  return is_bf16<T>() ? kBf16Rounding : 1.2e-7;
}

double sum_abs(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += std::abs(v);
  return s;
}

template <typename T>
void run_sum_all(int64_t n, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(31 + n));
  const std::vector<float> x = random_input<T>(rng, n, -0.5f, 1.f);
  const std::vector<double> xd = widen(x);
  const double want = kernels::cpu::sum_all<double>(xd.data(), n);
  DeviceBuffer<T> gx(as_type<T>(x)), gout(1);
  DeviceBuffer<double> workspace(kernels::cuda::kSumPartials);
  kernels::cuda::sum_all<T>(gx.get(), n, workspace.get(), gout.get(), cuda::stream());
  const std::vector<float> got = as_float(gout.download());
  checks.expect("sum", mismatch_report(widen(got), {want}, sum_rtol<T>(), 1e-12 * sum_abs(x)));
  // Run to run, the result is bit-identical.
  kernels::cuda::sum_all<T>(gx.get(), n, workspace.get(), gout.get(), cuda::stream());
  checks.expect("sum, second run", mismatch_report(as_float(gout.download()), got, 0, 0));
}

// `out` has the rank of `full`, with 1 in the reduced dimensions.
struct SumToShape {
  Dims full, out;
};

template <typename T>
void run_sum_to(const SumToShape& s, Checks& checks) {
  std::mt19937 rng(static_cast<unsigned>(37 + numel(s.full)));
  const int rank = static_cast<int>(s.full.size());
  Dims out_strides = contiguous_strides(s.out);
  for (int d = 0; d < rank; ++d)
    if (s.out[d] == 1) out_strides[d] = 0;
  const int64_t out_numel = numel(s.out);
  const std::vector<float> x = random_input<T>(rng, numel(s.full));
  const std::vector<double> xd = widen(x);
  std::vector<double> want(out_numel);
  kernels::cpu::sum_to<double>(xd.data(), s.full.data(), rank, want.data(), out_strides.data(),
                               out_numel);
  DeviceBuffer<T> gx(as_type<T>(x)), gout(as_type<T>(std::vector<float>(out_numel, NAN)));
  DeviceBuffer<double> workspace(
      kernels::cuda::sum_to_workspace(s.full.data(), rank, out_strides.data(), out_numel));
  kernels::cuda::sum_to<T>(gx.get(), s.full.data(), rank, gout.get(), out_strides.data(), out_numel,
                           workspace.get(), cuda::stream());
  const std::vector<float> got = as_float(gout.download());
  checks.expect("out", mismatch_report(widen(got), want, sum_rtol<T>(), 1e-12 * sum_abs(x)));
  kernels::cuda::sum_to<T>(gx.get(), s.full.data(), rank, gout.get(), out_strides.data(), out_numel,
                           workspace.get(), cuda::stream());
  checks.expect("out, second run", mismatch_report(as_float(gout.download()), got, 0, 0));
}

std::vector<SumToShape> sum_to_shapes() {
  return {
      {{100, 50}, {1, 50}},                      // bias gradient, one pass
      {{3000, 40}, {1, 40}},                     // bias gradient, reduction split in slices
      {{4, 6, 5, 33}, {4, 1, 5, 1}},             // middle and last dimensions reduced
      {{3, 7, 300}, {1, 7, 1}},                  // outer and inner dimensions reduced
      {{2, 3, 2, 5, 3, 7}, {1, 3, 1, 5, 1, 7}},  // rank 6, alternating
      {{2, 3, 2, 5, 3, 7}, {2, 3, 2, 5, 3, 1}},  // only the last dimension reduced
      {{50, 300}, {1, 1}},                       // everything reduced: sum_all
      {{0, 5}, {1, 5}},                          // an empty reduction: zeros
  };
}

}  // namespace

std::vector<KernelCase> elementwise_cases() {
  std::vector<KernelCase> cases;
  add_binary_cases<float>(cases);
  add_binary_cases<bf16>(cases);
  for (int64_t offset : {0, 1}) {
    const std::string at = offset ? " input one element in" : "";
    cases.push_back({"scale f32" + at, [=](Checks& c) { run_scale<float>(offset, c); }});
    cases.push_back({"scale bf16" + at, [=](Checks& c) { run_scale<bf16>(offset, c); }});
    cases.push_back(
        {"add_inplace f32" + at, [=](Checks& c) { run_add_inplace<float>(offset, c); }});
    cases.push_back(
        {"add_inplace bf16" + at, [=](Checks& c) { run_add_inplace<bf16>(offset, c); }});
  }
  // Nothing, one chunk, two chunks, and more chunks than partials (blocks take several).
  const int64_t many = int64_t{kernels::cuda::kSumPartials} * 4096 + 12345;
  for (int64_t n : {int64_t{0}, int64_t{4095}, int64_t{4097}, many}) {
    cases.push_back(
        {"sum_all f32 n=" + std::to_string(n), [n](Checks& c) { run_sum_all<float>(n, c); }});
    cases.push_back(
        {"sum_all bf16 n=" + std::to_string(n), [n](Checks& c) { run_sum_all<bf16>(n, c); }});
  }
  for (const SumToShape& s : sum_to_shapes()) {
    const std::string name = " " + str(s.full) + " -> " + str(s.out);
    cases.push_back({"sum_to f32" + name, [s](Checks& c) { run_sum_to<float>(s, c); }});
    cases.push_back({"sum_to bf16" + name, [s](Checks& c) { run_sum_to<bf16>(s, c); }});
  }
  return cases;
}

}  // namespace latte::test

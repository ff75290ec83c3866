// Copy cases: strided_copy with element conversion and fill, against the CPU twins of
// kernels/cpu/copy.h. Dense copies (whole-tensor dtype casts) and fills take 16-byte accesses when
// every pointer is 16-byte aligned: the sizes leave a tail of a vector group, and operands also
// start one element into their buffers (element by element). Each conversion is the same single
// rounding on both sides (bf16 to nearest even, through float) and a fill stores one value, so
// every tolerance is 0.
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "cuda/kernel_case.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cpu/copy.h"
#include "kernels/cuda/copy.cuh"

namespace latte::test {

namespace {

template <typename T>
std::string name_of() {
  if constexpr (std::is_same_v<T, float>)
    return "f32";
  else if constexpr (std::is_same_v<T, double>)
    return "f64";
  else if constexpr (std::is_same_v<T, bf16>)
    return "bf16";
  else if constexpr (std::is_same_v<T, int32_t>)
    return "i32";
  else
    return "i64";
}

template <typename T>
std::vector<double> widen(const std::vector<T>& x) {
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = convert_element<double>(x[i]);
  return out;
}

// `offset` elements of T, then n values of Uniform(-100, 100) converted to T.
template <typename T>
std::vector<T> random_values(std::mt19937& rng, size_t offset, size_t n) {
  const std::vector<float> x = uniform(rng, offset + n, -100.f, 100.f);
  std::vector<T> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = convert_element<T>(x[i]);
  return out;
}

// A copy over `shape` from src (strides src_strides) into a contiguous dst; src and dst start
// src_offset and dst_offset elements into their buffers.
struct CopyShape {
  std::vector<int64_t> shape, src_strides;
  int64_t src_offset = 0, dst_offset = 0;
};

template <typename Src, typename Dst>
void run_copy(const CopyShape& s, Checks& checks) {
  const int rank = static_cast<int>(s.shape.size());
  std::vector<int64_t> dst_strides(rank);
  int64_t n = 1, span = 1;
  for (int d = rank - 1; d >= 0; --d) {
    dst_strides[d] = n;
    n *= s.shape[d];
    span += (s.shape[d] - 1) * s.src_strides[d];
  }
  std::mt19937 rng(static_cast<unsigned>(41 + n));
  const std::vector<Src> src = random_values<Src>(rng, s.src_offset, span);
  std::vector<Dst> want(n);
  kernels::cpu::strided_copy<Src, Dst>(src.data() + s.src_offset, s.src_strides.data(), want.data(),
                                       dst_strides.data(), s.shape.data(), rank);
  DeviceBuffer<Src> gsrc(src);
  DeviceBuffer<Dst> gdst(s.dst_offset + n);
  kernels::cuda::strided_copy<Src, Dst>(gsrc.get() + s.src_offset, s.src_strides.data(),
                                        gdst.get() + s.dst_offset, dst_strides.data(),
                                        s.shape.data(), rank, cuda::stream());
  checks.expect("dst", mismatch_report(widen(gdst.download(s.dst_offset)), widen(want), 0, 0));
}

template <typename Src, typename Dst>
void add_copy_cases(std::vector<KernelCase>& cases) {
  // 7007 elements: 16 k + 15, 8 k + 7 and 4 k + 3, a tail for every group size.
  // Rows of 64 narrowed from rows of 96 and rows of 32 broadcast over 3 heads: whole 16-byte
  // groups per row, taken as groups by same-dtype copies (not when a side starts one element
  // in); rows of 60 leave a partial 8-element bf16 group (element by element; whole 4-element
  // groups in f32).
  std::vector<CopyShape> shapes = {{{7, 1001}, {1001, 1}},
                                   {{7, 1001}, {1001, 1}, 1, 0},
                                   {{7, 1001}, {1001, 1}, 0, 1},
                                   {{37, 53}, {1, 37}},  // a transpose: the strided walk
                                   {{5, 7, 3, 64}, {2016, 288, 96, 1}},
                                   {{5, 7, 3, 64}, {2016, 288, 96, 1}, 1, 0},
                                   {{5, 7, 3, 64}, {2016, 288, 96, 1}, 0, 1},
                                   {{5, 7, 3, 32}, {224, 32, 0, 1}},
                                   {{5, 7, 3, 60}, {2016, 288, 96, 1}}};
  for (const CopyShape& s : shapes) {
    std::string dims;
    for (int64_t d : s.shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    cases.push_back({"strided_copy " + name_of<Src>() + " -> " + name_of<Dst>() + " [" + dims +
                         "]" + (s.src_strides[0] == 1 ? " transposed" : "") +
                         (s.src_strides.size() == 4 && s.src_strides[2] == 0 ? " broadcast" : "") +
                         (s.src_offset ? " src one element in" : "") +
                         (s.dst_offset ? " dst one element in" : ""),
                     [s](Checks& c) { run_copy<Src, Dst>(s, c); }});
  }
}

template <typename T>
void run_fill(int64_t n, int64_t offset, float value, Checks& checks) {
  const T v = convert_element<T>(value);
  std::vector<T> want(n);
  kernels::cpu::fill<T>(want.data(), n, v);
  // 99 first, so that an element the kernel skips shows.
  DeviceBuffer<T> gdst(std::vector<T>(offset + n, convert_element<T>(99.f)));
  kernels::cuda::fill<T>(gdst.get() + offset, n, v, cuda::stream());
  checks.expect("dst", mismatch_report(widen(gdst.download(offset)), widen(want), 0, 0));
}

std::string label(float value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

template <typename T>
void add_fill_cases(std::vector<KernelCase>& cases) {
  for (int64_t offset : {0, 1})
    for (float value : {0.f, -2.75f})
      cases.push_back({"fill " + name_of<T>() + " n=10007 value " + label(value) +
                           (offset ? " one element in" : ""),
                       [=](Checks& c) { run_fill<T>(10007, offset, value, c); }});
}

}  // namespace

std::vector<KernelCase> copy_cases() {
  std::vector<KernelCase> cases;
  add_copy_cases<float, bf16>(cases);
  add_copy_cases<bf16, float>(cases);
  add_copy_cases<bf16, bf16>(cases);
  add_copy_cases<float, float>(cases);
  add_copy_cases<double, bf16>(cases);
  add_copy_cases<int64_t, int32_t>(cases);
  add_fill_cases<float>(cases);
  add_fill_cases<bf16>(cases);
  add_fill_cases<int64_t>(cases);
  return cases;
}

}  // namespace latte::test

// Vector access for the memory-bound kernels (included by .cu files only): groups of consecutive
// elements moved by whole 16-byte loads and stores, the host checks that an operand (or every row
// of one) allows them, and the grid-stride loop that walks n elements in such groups and does
// what is left one element at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda::detail {

// The widest global access of one thread (ld/st.global.v4.b32).
inline constexpr int kVectorBytes = 16;
// Bytes of its narrowest operand a thread moves per loop step: two 16-byte accesses per operand,
// all loads issued before the first use, so that a step keeps 32 bytes per input in flight.
inline constexpr int kGroupBytes = 2 * kVectorBytes;

// Elements per group when operands of types T... are walked together.
template <typename... T>
inline constexpr int kGroupSize = kGroupBytes / static_cast<int>(std::min({sizeof(T)...}));

// N consecutive elements of T, aligned as one access of their size (at most 16 bytes): N = 1 is
// a plain element, a group of 16 bytes or more is a sequence of 16-byte accesses.
template <typename T, int N>
struct alignas(std::min<size_t>(sizeof(T) * N, kVectorBytes)) Vec {
  T v[N];
};

// The N elements starting at p, which is aligned as Vec<T, N>.
template <int N, typename T>
__device__ __forceinline__ Vec<T, N> load_vec(const T* p) {
  return *reinterpret_cast<const Vec<T, N>*>(p);
}
template <int N, typename T>
__device__ __forceinline__ void store_vec(T* p, const Vec<T, N>& v) {
  *reinterpret_cast<Vec<T, N>*>(p) = v;
}

// Elements of T in one 16-byte access.
template <typename T>
inline constexpr int kPackWidth = kVectorBytes / static_cast<int>(sizeof(T));

// Whether p allows 16-byte accesses (a view can start anywhere in its storage).
inline bool vector_aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % kVectorBytes == 0;
}

// Whether rows `row_stride` elements of T apart, starting at each of these bases, all allow
// 16-byte accesses (row-wise kernels moving whole rows in Vec<T, kPackWidth<T>>).
template <typename T>
bool rows_vector_aligned(int64_t row_stride, std::initializer_list<const void*> bases) {
  if (row_stride * static_cast<int64_t>(sizeof(T)) % kVectorBytes != 0) return false;
  for (const void* b : bases)
    if (!vector_aligned(b)) return false;
  return true;
}

// Blocks of `threads` for for_each_group over n elements in groups of `group`.
inline unsigned grid_for_groups(int64_t n, int group, bool vectorized, int threads) {
  return grid_for(vectorized ? n / group : n, threads);
}

// The grid-stride loop of an elementwise kernel over n elements: group(i) for the whole groups of
// N (elements [i, i + N), i a multiple of N) when `vectorized`, then element(i) for each element
// left: the n % N tail, or all n when some operand is not vector_aligned.
template <int N, typename Group, typename Element>
__device__ __forceinline__ void for_each_group(int64_t n, bool vectorized, const Group& group,
                                               const Element& element) {
  const int64_t start = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t groups = vectorized ? n / N : 0;
  for (int64_t g = start; g < groups; g += step) group(g * N);
  for (int64_t i = groups * N + start; i < n; i += step) element(i);
}

}  // namespace latte::kernels::cuda::detail

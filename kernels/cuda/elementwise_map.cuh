// The kernel shared by the dense elementwise ops (included by .cu files only): for n contiguous
// elements, op reads element i of I inputs and writes element i of O outputs. When every operand
// is 16-byte aligned a thread takes groups of kGroupSize<In, Out> elements, loading each input
// group with 16-byte accesses before applying op to its elements in order and storing the output
// groups the same way (vector_access.cuh); the n % group tail, and everything when an operand is
// not aligned, go one element at a time. op sees the stored values element by element either way,
// so each result is the same on both paths. The caller launches
//   map_kernel<<<launch.blocks, kMapThreads, 0, stream>>>(n, launch.vectorized, operands, op)
// with launch = plan_map(n, operands).
#pragma once

#include <cstdint>

#include "kernels/cuda/vector_access.cuh"

namespace latte::kernels::cuda::detail {

inline constexpr int kMapThreads = 256;

// Device pointers of the inputs and outputs (an output may also be an input: add_inplace).
template <typename In, int I, typename Out, int O>
struct Operands {
  const In* in[I];
  Out* out[O];
};

// Elements [i, i + N) of every operand; op(x, y) maps the I input values x of one element to its
// O output values y.
template <int N, typename In, int I, typename Out, int O, typename Op>
__device__ __forceinline__ void map_group(const Operands<In, I, Out, O>& p, const Op& op,
                                          int64_t i) {
  Vec<In, N> x[I];
#pragma unroll
  for (int k = 0; k < I; ++k) x[k] = load_vec<N>(p.in[k] + i);
  Vec<Out, N> y[O];
#pragma unroll
  for (int j = 0; j < N; ++j) {
    In xj[I];
    Out yj[O];
#pragma unroll
    for (int k = 0; k < I; ++k) xj[k] = x[k].v[j];
    op(xj, yj);
#pragma unroll
    for (int k = 0; k < O; ++k) y[k].v[j] = yj[k];
  }
#pragma unroll
  for (int k = 0; k < O; ++k) store_vec<N>(p.out[k] + i, y[k]);
}

template <typename In, int I, typename Out, int O, typename Op>
__global__ void __launch_bounds__(kMapThreads)
    map_kernel(int64_t n, bool vectorized, const Operands<In, I, Out, O> p, const Op op) {
  constexpr int N = kGroupSize<In, Out>;
  for_each_group<N>(
      n, vectorized, [&](int64_t i) { map_group<N>(p, op, i); },
      [&](int64_t i) { map_group<1>(p, op, i); });
}

struct MapLaunch {
  unsigned blocks;
  bool vectorized;  // every operand vector_aligned
};

template <typename In, int I, typename Out, int O>
MapLaunch plan_map(int64_t n, const Operands<In, I, Out, O>& p) {
  bool vectorized = true;
  for (const In* q : p.in) vectorized = vectorized && vector_aligned(q);
  for (const Out* q : p.out) vectorized = vectorized && vector_aligned(q);
  return {grid_for_groups(n, kGroupSize<In, Out>, vectorized, kMapThreads), vectorized};
}

}  // namespace latte::kernels::cuda::detail

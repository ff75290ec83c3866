// The device side of kernels/cuda/merged_dims.h (included by .cu files only): the offsets in both
// operands of element i of a merged walk, row-major over its dimensions. One division per
// dimension but the first (whose index is what remains).
#pragma once

#include <cstdint>

#include "kernels/cuda/merged_dims.h"

namespace latte::kernels::cuda::detail {

__device__ __forceinline__ void merged_offsets(const MergedDims& g, int64_t i, int64_t& a_off,
                                               int64_t& b_off) {
  a_off = b_off = 0;
  for (int d = g.rank - 1; d > 0; --d) {
    const int64_t q = i / g.shape[d], idx = i - q * g.shape[d];
    a_off += idx * g.a_stride[d];
    b_off += idx * g.b_stride[d];
    i = q;
  }
  a_off += i * g.a_stride[0];
  b_off += i * g.b_stride[0];
}

}  // namespace latte::kernels::cuda::detail

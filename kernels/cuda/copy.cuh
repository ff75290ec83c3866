// Strided n-d copy with element conversion and fill on CUDA, the twins of kernels/cpu/copy.h:
// the device side of Tensor::copy_, contiguous(), to(dtype) and fill_.
// How it computes: one thread per destination element in a grid-stride loop; the flat index is
// split into coordinates (row-major over `shape`) and each side's offset is the dot product with
// its strides, over the dimensions both operands can merge (kernels/cuda/merged_dims.h). When
// they merge into one dense run (whole-tensor dtype casts), element i goes to element i as an
// elementwise map (elementwise_map.cuh): with both pointers 16-byte aligned, a thread moves
// 32 bytes of the narrower type per step in 16-byte accesses, the tail one element at a time.
// A same-dtype copy whose innermost dimension runs contiguously on both sides in 16-byte aligned
// groups (narrowed, broadcast or windowed rows) moves a group per thread step instead.
// Conversions go through float (bf16) or are plain casts. fill stores 32 bytes per thread step in
// the same way (a zero fill is no special case: the stores already run at write bandwidth).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"
#include "kernels/cuda/merged_dims.h"

namespace latte::kernels::cuda {

inline constexpr int kMaxCopyRank = kMaxMergedRank;

// dst[i] = convert(src[i]) over an n-d index space `shape` (rank <= 6) with element strides.
// Src, Dst in {float, double, latte::bf16, int32_t, int64_t}. The shape and strides are host
// arrays.
template <typename Src, typename Dst>
void strided_copy(const Src* src, const int64_t* src_strides, Dst* dst, const int64_t* dst_strides,
                  const int64_t* shape, int rank, cudaStream_t stream);

// dst[i] = value for n contiguous elements (value converted to T once, on the host).
template <typename T>
void fill(T* dst, int64_t n, T value, cudaStream_t stream);

}  // namespace latte::kernels::cuda

// Strided n-d copy with element conversion: the one kernel behind contiguous(), clone(), to(dtype)
// and copy_(). Walks the destination in row-major order; the innermost dimension is a tight loop.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

// dst[i] = convert(src[i]) over an n-d index space `shape` (rank <= 6) with element strides.
template <typename Src, typename Dst>
void strided_copy(const Src* src, const int64_t* src_strides, Dst* dst, const int64_t* dst_strides,
                  const int64_t* shape, int rank);

// dst[i] = value for n contiguous elements.
template <typename T>
void fill(T* dst, int64_t n, T value);

}  // namespace latte::kernels::cpu

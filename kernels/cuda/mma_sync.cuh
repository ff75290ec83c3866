// Warp-level tensor-core primitives for bf16 (sm_80 and later), included by .cu files only:
// ldmatrix (shared memory -> per-lane fragments) and mma.sync m16n8k16 with fp32 accumulation.
// Fragment layouts (PTX ISA, "mma.m16n8k16" and "ldmatrix"), with g = lane / 4 and t = lane % 4:
// - A, 16x16 row-major: a[0] = A[g][2t, 2t+1], a[1] = A[g+8][2t, 2t+1], a[2] = A[g][2t+8, 2t+9],
//   a[3] = A[g+8][2t+8, 2t+9];
// - B, 16x8 ("col"): b[0] = B[2t, 2t+1][g], b[1] = B[2t+8, 2t+9][g];
// - C/D, 16x8 fp32: c[0], c[1] = C[g][2t, 2t+1], c[2], c[3] = C[g+8][2t, 2t+1];
// each 32-bit register holds two bf16, the lower index in the low half.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <cstring>

namespace latte::kernels::cuda::detail {

// ldmatrix.x4: lane l passes the address of row l % 8 of 8x8 bf16 matrix l / 8 (16 contiguous
// bytes, 16-byte aligned, in shared memory); r[i] receives row g, columns 2t and 2t+1 of matrix i.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// ldmatrix.x4.trans: as ldmatrix_x4, but r[i] receives rows 2t and 2t+1 of column g of matrix i.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a b for a 16x16 bf16 A, a 16x8 bf16 B and a 16x8 fp32 accumulator (layouts above).
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4],
                                               const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Two floats rounded to bf16 in one register, `lo` in the low half (a fragment element pair).
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  uint32_t bits;
  std::memcpy(&bits, &pair, sizeof(bits));
  return bits;
}

}  // namespace latte::kernels::cuda::detail

// 2^x on the special function unit in one instruction (included by .cu files only).
#pragma once

namespace latte::kernels::cuda::detail {

// ex2.approx.ftz.f32: at most 2 ulp from 2^x; results below 2^-126 flush to zero and -inf gives
// 0. exp2f without fast math adds a denormal range check and two multiplies around the same
// instruction, which the softmax loops of the attention kernels pay per score; their exponents
// are <= 0 (probabilities), where a denormal is as good as zero next to a row sum >= 1.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace latte::kernels::cuda::detail

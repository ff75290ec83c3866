// Device-side helpers shared by the CUDA kernel files (included by .cu files only): the mapping
// of latte's bf16 storage type to CUDA's __nv_bfloat16, float conversions, warp and block
// reductions in a fixed order (so every sum is reproducible run to run), launch arithmetic and
// the dynamic shared-memory allowance of a kernel.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"
#include "kernels/cuda/cuda_check.h"

namespace latte::kernels::cuda::detail {

inline constexpr unsigned kFullMask = 0xffffffffu;
inline constexpr int kWarp = 32;

// The device element type behind a host-visible element type: latte::bf16 and __nv_bfloat16 are
// both the upper 16 bits of an IEEE float, so pointers convert by reinterpret_cast.
template <typename T>
struct DeviceTypeOf {
  using type = T;
};
template <>
struct DeviceTypeOf<latte::bf16> {
  using type = __nv_bfloat16;
};
template <typename T>
using DeviceType = typename DeviceTypeOf<T>::type;

template <typename T>
DeviceType<T>* device_ptr(T* p) {
  return reinterpret_cast<DeviceType<T>*>(p);
}
template <typename T>
const DeviceType<T>* device_ptr(const T* p) {
  return reinterpret_cast<const DeviceType<T>*>(p);
}

__device__ __forceinline__ float to_float(float x) {
  return x;
}
__device__ __forceinline__ float to_float(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Butterfly reductions over the 32 lanes of a full warp; every lane gets the result.
template <typename V>
__device__ __forceinline__ V warp_sum(V v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` holds 32 values in shared memory. Warp sums, then the warp sums in warp order:
// a fixed tree, so the result is the same on every run.
template <typename V>
__device__ V block_sum(V v, V* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : V(0);
  return warp_sum(v);
}

// max over the block, like block_sum.
__device__ inline float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

// Lets `kernel` use `bytes` of dynamic shared memory (above the 48 KB default).
template <typename Kernel>
void allow_shared_memory(Kernel* kernel, int64_t bytes) {
  LATTE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
}

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, capped so that huge n
// does not launch millions of blocks.
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = ceil_div(n, threads);
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65536 ? 65536 : blocks));
}

}  // namespace latte::kernels::cuda::detail

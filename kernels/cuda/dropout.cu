#include "kernels/cuda/dropout.cuh"

#include <cmath>

#include "kernels/cpu/random.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;

// The counter multiplier of kernels/cpu/random.cpp's hash(seed, counter) =
// splitmix64(splitmix64(seed) ^ counter * kCounterMultiplier).
constexpr uint64_t kCounterMultiplier = 0xd1b54a32d192ed03ull;

// kernels::cpu::splitmix64 on the device.
__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The CPU keeps an element when uniform = (h >> 11) * 2^-53 >= p. Both sides of that comparison
// are exact doubles, and k * 2^-53 >= p holds exactly when k >= ceil(p * 2^53) (p * 2^53 is
// exact too), so the device compares the 53-bit integer k against that threshold.
template <typename T>
__global__ void dropout_kernel(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ mask,
                               int64_t n, uint64_t seed_hash, uint64_t offset, uint64_t threshold,
                               float keep_scale) {
  const T keep = from_float<T>(keep_scale), drop = from_float<T>(0.f);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t counter = offset + static_cast<uint64_t>(i);
    const uint64_t h = splitmix64(seed_hash ^ (counter * kCounterMultiplier));
    const T m = (h >> 11) >= threshold ? keep : drop;
    mask[i] = m;
    y[i] = from_float<T>(to_float(x[i]) * to_float(m));
  }
}

}  // namespace

template <typename T>
void dropout_forward(const T* x, T* y, T* mask, int64_t n, double p, uint64_t seed, uint64_t offset,
                     cudaStream_t stream) {
  if (n == 0) return;
  const auto threshold = static_cast<uint64_t>(std::ceil(std::ldexp(p, 53)));
  // As the CPU: 1/(1-p) rounded to float (then to T on the device).
  const auto keep_scale = static_cast<float>(1.0 / (1.0 - p));
  dropout_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(
      device_ptr(x), device_ptr(y), device_ptr(mask), n, cpu::splitmix64(seed), offset, threshold,
      keep_scale);
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_DROPOUT(T)                                                                  \
  template void dropout_forward<T>(const T*, T*, T*, int64_t, double, uint64_t, uint64_t, \
                                   cudaStream_t);
LATTE_DROPOUT(float)
LATTE_DROPOUT(latte::bf16)
#undef LATTE_DROPOUT

}  // namespace latte::kernels::cuda

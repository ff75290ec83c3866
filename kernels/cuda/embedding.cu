#include "kernels/cuda/embedding.cuh"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;
constexpr int kColumnsPerThread = 8;
constexpr int kTileColumns = kThreads * kColumnsPerThread;

template <typename T>
__global__ void embedding_forward_kernel(const int32_t* __restrict__ ids,
                                         const T* __restrict__ weight, T* __restrict__ out,
                                         int64_t n, int64_t dim) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n * dim;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx / dim, j = idx % dim;
    out[idx] = weight[static_cast<int64_t>(ids[i]) * dim + j];
  }
}

// Block (row v = blockIdx.x, column tile blockIdx.y).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    embedding_backward_kernel(const int32_t* __restrict__ ids, const T* __restrict__ dout,
                              T* __restrict__ dweight, int64_t n, int64_t dim) {
  __shared__ unsigned matches[kThreads / kWarp];
  const int32_t row = static_cast<int32_t>(blockIdx.x);
  const int64_t c0 = static_cast<int64_t>(blockIdx.y) * kTileColumns + threadIdx.x;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  float acc[kColumnsPerThread] = {};
  for (int64_t i0 = 0; i0 < n; i0 += kThreads) {
    const int64_t i = i0 + threadIdx.x;
    const bool hit = i < n && ids[i] == row;
    const unsigned ballot = __ballot_sync(kFullMask, hit);
    __syncthreads();  // the previous chunk's masks have been read
    if (lane == 0) matches[warp] = ballot;
    __syncthreads();
    // Every thread walks the chunk's tokens in order: warp by warp, lane by lane.
    for (int w = 0; w < kThreads / kWarp; ++w) {
      for (unsigned m = matches[w]; m != 0; m &= m - 1) {
        const int64_t token = i0 + w * kWarp + __ffs(m) - 1;
        const T* g = dout + token * dim;
#pragma unroll
        for (int e = 0; e < kColumnsPerThread; ++e) {
          const int64_t c = c0 + e * kThreads;
          if (c < dim) acc[e] += to_float(g[c]);
        }
      }
    }
  }
  T* out = dweight + static_cast<int64_t>(row) * dim;
#pragma unroll
  for (int e = 0; e < kColumnsPerThread; ++e) {
    const int64_t c = c0 + e * kThreads;
    if (c < dim) out[c] = from_float<T>(acc[e]);
  }
}

}  // namespace

template <typename T>
void embedding_forward(const int32_t* ids, const T* weight, T* out, int64_t n, int64_t dim,
                       cudaStream_t stream) {
  if (n * dim == 0) return;
  embedding_forward_kernel<<<grid_for(n * dim, kThreads), kThreads, 0, stream>>>(
      ids, device_ptr(weight), device_ptr(out), n, dim);
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, T* dweight, int64_t n, int64_t vocab,
                        int64_t dim, cudaStream_t stream) {
  if (vocab * dim == 0) return;
  LATTE_CHECK(vocab < (int64_t(1) << 31) && ceil_div(dim, kTileColumns) <= 65535)
      << "cuda embedding_backward: vocab " << vocab << " x dim " << dim
      << " exceed the grid limits";
  const dim3 grid(static_cast<unsigned>(vocab), static_cast<unsigned>(ceil_div(dim, kTileColumns)));
  embedding_backward_kernel<<<grid, kThreads, 0, stream>>>(ids, device_ptr(dout),
                                                           device_ptr(dweight), n, dim);
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_EMBEDDING(T)                                                                     \
  template void embedding_forward<T>(const int32_t*, const T*, T*, int64_t, int64_t,           \
                                     cudaStream_t);                                            \
  template void embedding_backward<T>(const int32_t*, const T*, T*, int64_t, int64_t, int64_t, \
                                      cudaStream_t);
LATTE_EMBEDDING(float)
LATTE_EMBEDDING(latte::bf16)
#undef LATTE_EMBEDDING

}  // namespace latte::kernels::cuda

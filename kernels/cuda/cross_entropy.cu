#include "kernels/cuda/cross_entropy.cuh"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kRowThreads = 256;
constexpr int kReduceThreads = 1024;

// A running logsumexp: sum of exp(x - max) over the values seen.
struct Lse {
  float max, sum;
};

__device__ __forceinline__ Lse merge(Lse a, Lse b) {
  const float m = fmaxf(a.max, b.max);
  if (m == -INFINITY) return {m, 0.f};
  return {m, a.sum * expf(a.max - m) + b.sum * expf(b.max - m)};
}

__device__ Lse warp_merge(Lse v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const Lse other{__shfl_xor_sync(kFullMask, v.max, offset),
                    __shfl_xor_sync(kFullMask, v.sum, offset)};
    v = merge(v, other);
  }
  return v;
}

template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    cross_entropy_lse_kernel(const T* __restrict__ logits, float* __restrict__ lse, int64_t vocab) {
  __shared__ Lse partial[kRowThreads / kWarp];
  const T* x = logits + blockIdx.x * vocab;
  Lse run{-INFINITY, 0.f};
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float v = to_float(x[j]);
    if (v > run.max) {
      run.sum = run.sum * expf(run.max - v) + 1.f;  // exp(-inf) = 0 on the first value
      run.max = v;
    } else {
      run.sum += expf(v - run.max);
    }
  }
  run = warp_merge(run);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  if (lane == 0) partial[warp] = run;
  __syncthreads();
  if (warp == 0) {
    run = lane < kRowThreads / kWarp ? partial[lane] : Lse{-INFINITY, 0.f};
    run = warp_merge(run);
    if (lane == 0) lse[blockIdx.x] = run.max + logf(run.sum);
  }
}

// loss_sum = sum over counted rows of lse - logit[target], in row order per thread and a fixed
// tree across threads; counted = their number.
template <typename T>
__global__ void __launch_bounds__(kReduceThreads)
    cross_entropy_loss_kernel(const T* __restrict__ logits, const int32_t* __restrict__ targets,
                              const float* __restrict__ lse, int64_t rows, int64_t vocab,
                              int64_t ignore_index, double* loss_sum, int64_t* counted) {
  __shared__ double scratch[kWarp];
  __shared__ long long count_scratch[kWarp];
  double loss = 0;
  long long n = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const int32_t t = targets[r];
    if (t == ignore_index) continue;
    loss += static_cast<double>(lse[r]) - static_cast<double>(to_float(logits[r * vocab + t]));
    ++n;
  }
  loss = block_sum(loss, scratch);
  n = block_sum(n, count_scratch);
  if (threadIdx.x == 0) {
    *loss_sum = loss;
    *counted = n;
  }
}

template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    cross_entropy_backward_kernel(const T* __restrict__ logits, const int32_t* __restrict__ targets,
                                  const float* __restrict__ lse, const float* __restrict__ scale,
                                  T* __restrict__ dlogits, int64_t vocab, int64_t ignore_index) {
  const int64_t off = blockIdx.x * vocab;
  const int32_t t = targets[blockIdx.x];
  const bool ignored = t == ignore_index;
  const float s = *scale, l = lse[blockIdx.x];
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    float d = 0.f;
    if (!ignored) {
      d = s * expf(to_float(logits[off + j]) - l);
      if (j == t) d -= s;
    }
    dlogits[off + j] = from_float<T>(d);
  }
}

void check_rows(int64_t rows, const char* op) {
  LATTE_CHECK(rows < (int64_t(1) << 31)) << op << ": " << rows << " rows exceed the grid limit";
}

}  // namespace

template <typename T>
void cross_entropy_forward(const T* logits, const int32_t* targets, float* lse, int64_t rows,
                           int64_t vocab, int64_t ignore_index, double* loss_sum, int64_t* counted,
                           cudaStream_t stream) {
  check_rows(rows, "cuda cross_entropy_forward");
  if (rows > 0) {
    cross_entropy_lse_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
        device_ptr(logits), lse, vocab);
    LATTE_CUDA_CHECK_LAUNCH();
  }
  cross_entropy_loss_kernel<<<1, kReduceThreads, 0, stream>>>(
      device_ptr(logits), targets, lse, rows, vocab, ignore_index, loss_sum, counted);
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const float* lse,
                            const float* scale, T* dlogits, int64_t rows, int64_t vocab,
                            int64_t ignore_index, cudaStream_t stream) {
  check_rows(rows, "cuda cross_entropy_backward");
  if (rows == 0) return;
  cross_entropy_backward_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
      device_ptr(logits), targets, lse, scale, device_ptr(dlogits), vocab, ignore_index);
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_CROSS_ENTROPY(T)                                                                  \
  template void cross_entropy_forward<T>(const T*, const int32_t*, float*, int64_t, int64_t,    \
                                         int64_t, double*, int64_t*, cudaStream_t);             \
  template void cross_entropy_backward<T>(const T*, const int32_t*, const float*, const float*, \
                                          T*, int64_t, int64_t, int64_t, cudaStream_t);
LATTE_CROSS_ENTROPY(float)
LATTE_CROSS_ENTROPY(latte::bf16)
#undef LATTE_CROSS_ENTROPY

}  // namespace latte::kernels::cuda

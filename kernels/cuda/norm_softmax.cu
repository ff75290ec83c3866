#include "kernels/cuda/norm_softmax.cuh"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kRowThreads = 256;
// dweight blocks: 32 columns (one warp wide, coalesced) x 16 row groups.
constexpr int kColumns = 32, kRowGroups = 16;

template <typename T>
__global__ void rms_norm_forward_kernel(const T* __restrict__ x, int64_t x_row_stride,
                                        const T* __restrict__ w, T* __restrict__ y,
                                        float* __restrict__ rstd, int64_t cols, float eps) {
  __shared__ float scratch[kWarp];
  const T* xr = x + blockIdx.x * x_row_stride;
  T* yr = y + blockIdx.x * cols;
  float ss = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float v = to_float(xr[j]);
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float inv = 1.f / sqrtf(ss / static_cast<float>(cols) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = inv;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    yr[j] = from_float<T>(to_float(w[j]) * (to_float(xr[j]) * inv));
}

template <typename T>
__global__ void rms_norm_dx_kernel(const T* __restrict__ x, int64_t x_row_stride,
                                   const T* __restrict__ w, const float* __restrict__ rstd,
                                   const T* __restrict__ dy, T* __restrict__ dx, int64_t cols) {
  __shared__ float scratch[kWarp];
  const T* xr = x + blockIdx.x * x_row_stride;
  const int64_t off = blockIdx.x * cols;
  const float inv = rstd[blockIdx.x];
  float dot = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    dot += to_float(w[j]) * to_float(dy[off + j]) * to_float(xr[j]);
  dot = block_sum(dot, scratch);
  const float c = dot / static_cast<float>(cols) * inv * inv;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    dx[off + j] =
        from_float<T>(inv * (to_float(w[j]) * to_float(dy[off + j]) - to_float(xr[j]) * c));
}

// dweight[j] = sum_r dy[r, j] * x[r, j] * rstd[r]: thread (tx, ty) sums rows ty, ty + 16, ... of
// column j in order, then the 16 partials of the column are added in ty order.
template <typename T>
__global__ void rms_norm_dweight_kernel(const T* __restrict__ x, int64_t x_row_stride,
                                        const float* __restrict__ rstd, const T* __restrict__ dy,
                                        T* __restrict__ dweight, int64_t rows, int64_t cols) {
  __shared__ float partial[kRowGroups][kColumns + 1];
  const int64_t j = blockIdx.x * static_cast<int64_t>(kColumns) + threadIdx.x;
  float sum = 0.f;
  if (j < cols)
    for (int64_t r = threadIdx.y; r < rows; r += kRowGroups)
      sum += to_float(dy[r * cols + j]) * to_float(x[r * x_row_stride + j]) * rstd[r];
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    float total = 0.f;
    for (int g = 0; g < kRowGroups; ++g) total += partial[g][threadIdx.x];
    dweight[j] = from_float<T>(total);
  }
}

template <typename T>
__global__ void softmax_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t cols) {
  __shared__ float scratch[kWarp];
  const int64_t off = blockIdx.x * cols;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, to_float(x[off + j]));
  mx = block_max(mx, scratch);
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) sum += expf(to_float(x[off + j]) - mx);
  sum = block_sum(sum, scratch);
  const float inv = 1.f / sum;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    y[off + j] = from_float<T>(expf(to_float(x[off + j]) - mx) * inv);
}

template <typename T>
__global__ void softmax_backward_kernel(const T* __restrict__ y, const T* __restrict__ dy,
                                        T* __restrict__ dx, int64_t cols) {
  __shared__ float scratch[kWarp];
  const int64_t off = blockIdx.x * cols;
  float dot = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    dot += to_float(dy[off + j]) * to_float(y[off + j]);
  dot = block_sum(dot, scratch);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    dx[off + j] = from_float<T>(to_float(y[off + j]) * (to_float(dy[off + j]) - dot));
}

void check_rows(int64_t rows, const char* op) {
  LATTE_CHECK(rows < (int64_t(1) << 31)) << op << ": " << rows << " rows exceed the grid limit";
}

}  // namespace

template <typename T>
void rms_norm_forward(const T* x, int64_t x_row_stride, const T* weight, T* y, float* rstd,
                      int64_t rows, int64_t cols, double eps, cudaStream_t stream) {
  if (rows == 0) return;
  check_rows(rows, "cuda rms_norm_forward");
  rms_norm_forward_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
      device_ptr(x), x_row_stride, device_ptr(weight), device_ptr(y), rstd, cols,
      static_cast<float>(eps));
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void rms_norm_backward(const T* x, int64_t x_row_stride, const T* weight, const float* rstd,
                       const T* dy, T* dx, T* dweight, int64_t rows, int64_t cols,
                       cudaStream_t stream) {
  check_rows(rows, "cuda rms_norm_backward");
  if (cols == 0) return;
  if (rows > 0) {
    rms_norm_dx_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
        device_ptr(x), x_row_stride, device_ptr(weight), rstd, device_ptr(dy), device_ptr(dx),
        cols);
    LATTE_CUDA_CHECK_LAUNCH();
  }
  rms_norm_dweight_kernel<<<static_cast<unsigned>(ceil_div(cols, kColumns)),
                            dim3(kColumns, kRowGroups), 0, stream>>>(
      device_ptr(x), x_row_stride, rstd, device_ptr(dy), device_ptr(dweight), rows, cols);
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows == 0) return;
  check_rows(rows, "cuda softmax_forward");
  softmax_forward_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
      device_ptr(x), device_ptr(y), cols);
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols,
                      cudaStream_t stream) {
  if (rows == 0) return;
  check_rows(rows, "cuda softmax_backward");
  softmax_backward_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
      device_ptr(y), device_ptr(dy), device_ptr(dx), cols);
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_NORM_SOFTMAX(T)                                                                     \
  template void rms_norm_forward<T>(const T*, int64_t, const T*, T*, float*, int64_t, int64_t,    \
                                    double, cudaStream_t);                                        \
  template void rms_norm_backward<T>(const T*, int64_t, const T*, const float*, const T*, T*, T*, \
                                     int64_t, int64_t, cudaStream_t);                             \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t, cudaStream_t);                 \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t, cudaStream_t);
LATTE_NORM_SOFTMAX(float)
LATTE_NORM_SOFTMAX(latte::bf16)
#undef LATTE_NORM_SOFTMAX

}  // namespace latte::kernels::cuda

#include "kernels/cuda/activations.cuh"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid(float x) {
  return 1.f / (1.f + expf(-x));
}

// Runs f(i) for every i in [0, n) with a grid-stride loop.
template <typename F>
__global__ void elementwise_kernel(int64_t n, F f) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    f(i);
}

template <typename F>
void launch(int64_t n, cudaStream_t stream, F f) {
  if (n == 0) return;
  elementwise_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(n, f);
  LATTE_CUDA_CHECK_LAUNCH();
}

// The functors: structs rather than extended lambdas, so no special nvcc flag is needed.
template <typename T>
struct SiluForward {
  const T* x;
  T* y;
  __device__ void operator()(int64_t i) const {
    const float v = to_float(x[i]);
    y[i] = from_float<T>(v * sigmoid(v));
  }
};
template <typename T>
struct SiluBackward {
  const T *x, *dy;
  T* dx;
  __device__ void operator()(int64_t i) const {
    const float v = to_float(x[i]), s = sigmoid(v);
    dx[i] = from_float<T>(to_float(dy[i]) * (s + v * s * (1.f - s)));
  }
};
template <typename T>
struct SwigluForward {
  const T *gate, *up;
  T* y;
  __device__ void operator()(int64_t i) const {
    const float g = to_float(gate[i]);
    y[i] = from_float<T>(g * sigmoid(g) * to_float(up[i]));
  }
};
template <typename T>
struct SwigluBackward {
  const T *gate, *up, *dy;
  T *dgate, *dup;
  __device__ void operator()(int64_t i) const {
    const float g = to_float(gate[i]), s = sigmoid(g), u = to_float(up[i]), d = to_float(dy[i]);
    dgate[i] = from_float<T>(d * u * (s + g * s * (1.f - s)));
    dup[i] = from_float<T>(d * g * s);
  }
};
template <typename T>
struct SigmoidForward {
  const T* x;
  T* y;
  __device__ void operator()(int64_t i) const { y[i] = from_float<T>(sigmoid(to_float(x[i]))); }
};
template <typename T>
struct SigmoidBackward {
  const T *y, *dy;
  T* dx;
  __device__ void operator()(int64_t i) const {
    const float s = to_float(y[i]);
    dx[i] = from_float<T>(to_float(dy[i]) * s * (1.f - s));
  }
};

}  // namespace

template <typename T>
void silu_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  launch(n, stream, SiluForward<DeviceType<T>>{device_ptr(x), device_ptr(y)});
}
template <typename T>
void silu_backward(const T* x, const T* dy, T* dx, int64_t n, cudaStream_t stream) {
  launch(n, stream, SiluBackward<DeviceType<T>>{device_ptr(x), device_ptr(dy), device_ptr(dx)});
}
template <typename T>
void swiglu_forward(const T* gate, const T* up, T* y, int64_t n, cudaStream_t stream) {
  launch(n, stream, SwigluForward<DeviceType<T>>{device_ptr(gate), device_ptr(up), device_ptr(y)});
}
template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n,
                     cudaStream_t stream) {
  launch(n, stream,
         SwigluBackward<DeviceType<T>>{device_ptr(gate), device_ptr(up), device_ptr(dy),
                                       device_ptr(dgate), device_ptr(dup)});
}
template <typename T>
void sigmoid_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  launch(n, stream, SigmoidForward<DeviceType<T>>{device_ptr(x), device_ptr(y)});
}
template <typename T>
void sigmoid_backward(const T* y, const T* dy, T* dx, int64_t n, cudaStream_t stream) {
  launch(n, stream, SigmoidBackward<DeviceType<T>>{device_ptr(y), device_ptr(dy), device_ptr(dx)});
}

#define LATTE_ACTIVATIONS(T)                                                                     \
  template void silu_forward<T>(const T*, T*, int64_t, cudaStream_t);                            \
  template void silu_backward<T>(const T*, const T*, T*, int64_t, cudaStream_t);                 \
  template void swiglu_forward<T>(const T*, const T*, T*, int64_t, cudaStream_t);                \
  template void swiglu_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, cudaStream_t); \
  template void sigmoid_forward<T>(const T*, T*, int64_t, cudaStream_t);                         \
  template void sigmoid_backward<T>(const T*, const T*, T*, int64_t, cudaStream_t);
LATTE_ACTIVATIONS(float)
LATTE_ACTIVATIONS(latte::bf16)
#undef LATTE_ACTIVATIONS

}  // namespace latte::kernels::cuda

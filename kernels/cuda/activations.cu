#include "kernels/cuda/activations.cuh"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/elementwise_map.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

__device__ __forceinline__ float sigmoid(float x) {
  return 1.f / (1.f + expf(-x));
}

// Runs op over n elements of its operands (elementwise_map.cuh).
template <typename T, int I, int O, typename Op>
void launch(int64_t n, const Operands<T, I, T, O>& p, Op op, cudaStream_t stream) {
  if (n == 0) return;
  const MapLaunch l = plan_map(n, p);
  map_kernel<<<l.blocks, kMapThreads, 0, stream>>>(n, l.vectorized, p, op);
  LATTE_CUDA_CHECK_LAUNCH();
}

// The ops on one element: x holds the inputs' values, y receives the outputs'. Structs rather
// than extended lambdas, so no special nvcc flag is needed.
template <typename T>
struct SiluForward {  // x = {x}, y = {y}
  __device__ void operator()(const T* x, T* y) const {
    const float v = to_float(x[0]);
    y[0] = from_float<T>(v * sigmoid(v));
  }
};
template <typename T>
struct SiluBackward {  // x = {x, dy}, y = {dx}
  __device__ void operator()(const T* x, T* y) const {
    const float v = to_float(x[0]), s = sigmoid(v);
    y[0] = from_float<T>(to_float(x[1]) * (s + v * s * (1.f - s)));
  }
};
template <typename T>
struct SwigluForward {  // x = {gate, up}, y = {y}
  __device__ void operator()(const T* x, T* y) const {
    const float g = to_float(x[0]);
    y[0] = from_float<T>(g * sigmoid(g) * to_float(x[1]));
  }
};
template <typename T>
struct SwigluBackward {  // x = {gate, up, dy}, y = {dgate, dup}
  __device__ void operator()(const T* x, T* y) const {
    const float g = to_float(x[0]), s = sigmoid(g), u = to_float(x[1]), d = to_float(x[2]);
    y[0] = from_float<T>(d * u * (s + g * s * (1.f - s)));
    y[1] = from_float<T>(d * g * s);
  }
};
template <typename T>
struct SigmoidForward {  // x = {x}, y = {y}
  __device__ void operator()(const T* x, T* y) const {
    y[0] = from_float<T>(sigmoid(to_float(x[0])));
  }
};
template <typename T>
struct SigmoidBackward {  // x = {y, dy}, y = {dx}
  __device__ void operator()(const T* x, T* y) const {
    const float s = to_float(x[0]);
    y[0] = from_float<T>(to_float(x[1]) * s * (1.f - s));
  }
};

}  // namespace

template <typename T>
void silu_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  using D = DeviceType<T>;
  launch(n, Operands<D, 1, D, 1>{{device_ptr(x)}, {device_ptr(y)}}, SiluForward<D>{}, stream);
}
template <typename T>
void silu_backward(const T* x, const T* dy, T* dx, int64_t n, cudaStream_t stream) {
  using D = DeviceType<T>;
  launch(n, Operands<D, 2, D, 1>{{device_ptr(x), device_ptr(dy)}, {device_ptr(dx)}},
         SiluBackward<D>{}, stream);
}
template <typename T>
void swiglu_forward(const T* gate, const T* up, T* y, int64_t n, cudaStream_t stream) {
  using D = DeviceType<T>;
  launch(n, Operands<D, 2, D, 1>{{device_ptr(gate), device_ptr(up)}, {device_ptr(y)}},
         SwigluForward<D>{}, stream);
}
template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n,
                     cudaStream_t stream) {
  using D = DeviceType<T>;
  launch(n,
         Operands<D, 3, D, 2>{{device_ptr(gate), device_ptr(up), device_ptr(dy)},
                              {device_ptr(dgate), device_ptr(dup)}},
         SwigluBackward<D>{}, stream);
}
template <typename T>
void sigmoid_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  using D = DeviceType<T>;
  launch(n, Operands<D, 1, D, 1>{{device_ptr(x)}, {device_ptr(y)}}, SigmoidForward<D>{}, stream);
}
template <typename T>
void sigmoid_backward(const T* y, const T* dy, T* dx, int64_t n, cudaStream_t stream) {
  using D = DeviceType<T>;
  launch(n, Operands<D, 2, D, 1>{{device_ptr(y), device_ptr(dy)}, {device_ptr(dx)}},
         SigmoidBackward<D>{}, stream);
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

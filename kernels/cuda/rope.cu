#include "kernels/cuda/rope.cuh"

#include <initializer_list>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;

struct RopeArgs {
  cpu::AttentionLayout xl, yl;
  int32_t tokens, heads, groups, half;  // groups of V pairs per head vector: half / V
  int64_t position_offset;
  float direction;  // +1 forward, -1 backward
};

// Thread (b, t, h, g), g fastest, rotates the V pairs g * V ... g * V + V - 1 of its head vector,
// which lie in two spans of V elements: (lo[k], hi[k]) at g * V and half + g * V, or interleaved
// the adjacent pairs of 2V elements at 2gV. Each span moves as one Vec (16 bytes when V > 1).
template <typename T, int V, bool kInterleave>
__global__ void __launch_bounds__(kThreads)
    rope_kernel(const RopeArgs a, int32_t n_groups, const T* x, T* y, const float* __restrict__ cos,
                const float* __restrict__ sin) {
  using P = Vec<T, V>;
  const int32_t idx =
      static_cast<int32_t>(blockIdx.x) * kThreads + static_cast<int32_t>(threadIdx.x);
  if (idx >= n_groups) return;
  const int32_t g = idx % a.groups;
  int32_t rest = idx / a.groups;
  const int32_t h = rest % a.heads;
  rest /= a.heads;
  const int32_t t = rest % a.tokens, b = rest / a.tokens;
  const int32_t first = kInterleave ? 2 * g * V : g * V;
  const int32_t second = first + (kInterleave ? V : a.half);
  const T* xv = x + b * a.xl.batch_stride + t * a.xl.token_stride + h * a.xl.head_stride;
  T* yv = y + b * a.yl.batch_stride + t * a.yl.token_stride + h * a.yl.head_stride;
  const P lo = *reinterpret_cast<const P*>(xv + first);
  const P hi = *reinterpret_cast<const P*>(xv + second);
  float e[2 * V];
#pragma unroll
  for (int k = 0; k < V; ++k) e[k] = to_float(lo.v[k]), e[V + k] = to_float(hi.v[k]);
  const int64_t row = (a.position_offset + t) * a.half + g * V;
  float out[2 * V];
#pragma unroll
  for (int k = 0; k < V; ++k) {
    const int u = kInterleave ? 2 * k : k, w = kInterleave ? 2 * k + 1 : V + k;
    const float c = cos[row + k], s = a.direction * sin[row + k];
    out[u] = e[u] * c - e[w] * s;
    out[w] = e[u] * s + e[w] * c;
  }
  P ylo, yhi;
#pragma unroll
  for (int k = 0; k < V; ++k)
    ylo.v[k] = from_float<T>(out[k]), yhi.v[k] = from_float<T>(out[V + k]);
  *reinterpret_cast<P*>(yv + first) = ylo;
  *reinterpret_cast<P*>(yv + second) = yhi;
}

// Whether every span of kPackWidth<T> elements of both operands starts 16-byte aligned.
template <typename T>
bool spans_packable(const T* x, cpu::AttentionLayout xl, const T* y, cpu::AttentionLayout yl,
                    int64_t half) {
  for (const cpu::AttentionLayout& l : {xl, yl})
    if (!rows_vector_aligned<T>(l.batch_stride, {x, y}) ||
        !rows_vector_aligned<T>(l.token_stride, {}) || !rows_vector_aligned<T>(l.head_stride, {}))
      return false;
  return half % kPackWidth<T> == 0;
}

template <typename T>
void rotate(const T* x, cpu::AttentionLayout xl, T* y, cpu::AttentionLayout yl, int64_t batch,
            int64_t tokens, int64_t heads, int64_t rope_dim, const float* cos, const float* sin,
            int64_t position_offset, bool interleave, float direction, cudaStream_t stream) {
  const int64_t half = rope_dim / 2;
  const bool packed = spans_packable(x, xl, y, yl, half);
  const int64_t v = packed ? kPackWidth<T> : 1;
  const int64_t n_groups = batch * tokens * heads * (half / v);
  if (n_groups == 0) return;
  LATTE_CHECK(n_groups < (int64_t(1) << 31))
      << "cuda rope: " << n_groups << " groups of pairs exceed 2^31";
  const RopeArgs args{xl,
                      yl,
                      static_cast<int32_t>(tokens),
                      static_cast<int32_t>(heads),
                      static_cast<int32_t>(half / v),
                      static_cast<int32_t>(half),
                      position_offset,
                      direction};
  const auto blocks = static_cast<unsigned>(ceil_div(n_groups, kThreads));
  const auto n = static_cast<int32_t>(n_groups);
  const auto launch = [&](auto kernel) {
    kernel<<<blocks, kThreads, 0, stream>>>(args, n, device_ptr(x), device_ptr(y), cos, sin);
  };
  using D = DeviceType<T>;
  if (packed)
    interleave ? launch(rope_kernel<D, kPackWidth<T>, true>)
               : launch(rope_kernel<D, kPackWidth<T>, false>);
  else
    interleave ? launch(rope_kernel<D, 1, true>) : launch(rope_kernel<D, 1, false>);
  LATTE_CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T>
void rope_forward(const T* x, cpu::AttentionLayout x_layout, T* y, cpu::AttentionLayout y_layout,
                  int64_t batch, int64_t tokens, int64_t heads, int64_t rope_dim, const float* cos,
                  const float* sin, int64_t position_offset, bool interleave, cudaStream_t stream) {
  rotate(x, x_layout, y, y_layout, batch, tokens, heads, rope_dim, cos, sin, position_offset,
         interleave, 1.f, stream);
}

template <typename T>
void rope_backward(const T* dy, cpu::AttentionLayout dy_layout, T* dx,
                   cpu::AttentionLayout dx_layout, int64_t batch, int64_t tokens, int64_t heads,
                   int64_t rope_dim, const float* cos, const float* sin, int64_t position_offset,
                   bool interleave, cudaStream_t stream) {
  rotate(dy, dy_layout, dx, dx_layout, batch, tokens, heads, rope_dim, cos, sin, position_offset,
         interleave, -1.f, stream);
}

#define LATTE_ROPE(T)                                                                              \
  template void rope_forward<T>(const T*, cpu::AttentionLayout, T*, cpu::AttentionLayout, int64_t, \
                                int64_t, int64_t, int64_t, const float*, const float*, int64_t,    \
                                bool, cudaStream_t);                                               \
  template void rope_backward<T>(const T*, cpu::AttentionLayout, T*, cpu::AttentionLayout,         \
                                 int64_t, int64_t, int64_t, int64_t, const float*, const float*,   \
                                 int64_t, bool, cudaStream_t);
LATTE_ROPE(float)
LATTE_ROPE(latte::bf16)
#undef LATTE_ROPE

}  // namespace latte::kernels::cuda

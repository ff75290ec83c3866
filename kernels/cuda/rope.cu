#include "kernels/cuda/rope.cuh"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

struct RopeArgs {
  cpu::AttentionLayout xl, yl;
  int64_t tokens, heads, half, position_offset;
  int64_t step, partner;  // pair i is elements (i * step, i * step + partner)
  float direction;        // +1 forward, -1 backward
};

template <typename T>
__global__ void rope_kernel(const RopeArgs a, int64_t n_pairs, const T* x, T* y,
                            const float* __restrict__ cos, const float* __restrict__ sin) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n_pairs;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx % a.half;
    int64_t rest = idx / a.half;
    const int64_t h = rest % a.heads;
    rest /= a.heads;
    const int64_t t = rest % a.tokens, b = rest / a.tokens;
    const int64_t row = (a.position_offset + t) * a.half + i;
    const float c = cos[row], s = a.direction * sin[row];
    const T* xv = x + b * a.xl.batch_stride + t * a.xl.token_stride + h * a.xl.head_stride;
    T* yv = y + b * a.yl.batch_stride + t * a.yl.token_stride + h * a.yl.head_stride;
    const float u = to_float(xv[i * a.step]), w = to_float(xv[i * a.step + a.partner]);
    yv[i * a.step] = from_float<T>(u * c - w * s);
    yv[i * a.step + a.partner] = from_float<T>(u * s + w * c);
  }
}

template <typename T>
void rotate(const T* x, cpu::AttentionLayout xl, T* y, cpu::AttentionLayout yl, int64_t batch,
            int64_t tokens, int64_t heads, int64_t rope_dim, const float* cos, const float* sin,
            int64_t position_offset, bool interleave, float direction, cudaStream_t stream) {
  const int64_t half = rope_dim / 2;
  const int64_t n_pairs = batch * tokens * heads * half;
  if (n_pairs == 0) return;
  const RopeArgs args{
      xl,       yl, tokens, heads, half, position_offset, interleave ? 2 : 1, interleave ? 1 : half,
      direction};
  constexpr int kThreads = 256;
  rope_kernel<<<grid_for(n_pairs, kThreads), kThreads, 0, stream>>>(args, n_pairs, device_ptr(x),
                                                                    device_ptr(y), cos, sin);
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

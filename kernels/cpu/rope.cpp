#include "kernels/cpu/rope.h"

namespace latte::kernels::cpu {

namespace {

// Rotates every pair by +angle (direction 1) or -angle (direction -1).
template <typename T>
void rotate_pairs(const T* x, AttentionLayout xl, T* y, AttentionLayout yl, int64_t batch,
                  int64_t tokens, int64_t heads, int64_t rope_dim, const T* cos, const T* sin,
                  int64_t position_offset, bool interleave, T direction) {
  const int64_t half = rope_dim / 2;
  // Pair i is elements (i * step, i * step + partner).
  const int64_t step = interleave ? 2 : 1, partner = interleave ? 1 : half;
#pragma omp parallel for schedule(static) if (batch * tokens * heads * rope_dim >= (1 << 16))
  for (int64_t bt = 0; bt < batch * tokens; ++bt) {
    const int64_t b = bt / tokens, t = bt % tokens;
    const T* c = cos + (position_offset + t) * half;
    const T* s = sin + (position_offset + t) * half;
    for (int64_t h = 0; h < heads; ++h) {
      const T* xv = x + b * xl.batch_stride + t * xl.token_stride + h * xl.head_stride;
      T* yv = y + b * yl.batch_stride + t * yl.token_stride + h * yl.head_stride;
      for (int64_t i = 0; i < half; ++i) {
        const T a = xv[i * step], p = xv[i * step + partner], sn = direction * s[i];
        yv[i * step] = a * c[i] - p * sn;
        yv[i * step + partner] = a * sn + p * c[i];
      }
    }
  }
}

}  // namespace

template <typename T>
void rope_forward(const T* x, AttentionLayout x_layout, T* y, AttentionLayout y_layout,
                  int64_t batch, int64_t tokens, int64_t heads, int64_t rope_dim, const T* cos,
                  const T* sin, int64_t position_offset, bool interleave) {
  rotate_pairs(x, x_layout, y, y_layout, batch, tokens, heads, rope_dim, cos, sin, position_offset,
               interleave, T(1));
}

template <typename T>
void rope_backward(const T* dy, AttentionLayout dy_layout, T* dx, AttentionLayout dx_layout,
                   int64_t batch, int64_t tokens, int64_t heads, int64_t rope_dim, const T* cos,
                   const T* sin, int64_t position_offset, bool interleave) {
  rotate_pairs(dy, dy_layout, dx, dx_layout, batch, tokens, heads, rope_dim, cos, sin,
               position_offset, interleave, T(-1));
}

#define LATTE_INSTANTIATE_ROPE(T)                                                                  \
  template void rope_forward<T>(const T*, AttentionLayout, T*, AttentionLayout, int64_t, int64_t,  \
                                int64_t, int64_t, const T*, const T*, int64_t, bool);              \
  template void rope_backward<T>(const T*, AttentionLayout, T*, AttentionLayout, int64_t, int64_t, \
                                 int64_t, int64_t, const T*, const T*, int64_t, bool);
LATTE_INSTANTIATE_ROPE(float)
LATTE_INSTANTIATE_ROPE(double)
#undef LATTE_INSTANTIATE_ROPE

}  // namespace latte::kernels::cpu

#include "kernels/cpu/rope.h"

namespace latte::kernels::cpu {

namespace {

// sign = +1 rotates forward, -1 backward.
template <typename T>
void rotate(const T* x, AttentionLayout xl, T* y, AttentionLayout yl, int64_t batch,
            int64_t tokens, int64_t heads, int64_t rope_dim, const T* cos, const T* sin,
            int64_t position_offset, bool interleave, T sign) {
  const int64_t half = rope_dim / 2;
#pragma omp parallel for collapse(2) schedule(static) if (batch * tokens * heads * rope_dim > (1 << 14))
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < tokens; ++t) {
      const T* c = cos + (position_offset + t) * half;
      const T* s = sin + (position_offset + t) * half;
      for (int64_t h = 0; h < heads; ++h) {
        const T* xv = x + b * xl.batch_stride + t * xl.token_stride + h * xl.head_stride;
        T* yv = y + b * yl.batch_stride + t * yl.token_stride + h * yl.head_stride;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t ia = interleave ? 2 * i : i;
          const int64_t ib = interleave ? 2 * i + 1 : i + half;
          const T a = xv[ia], bb = xv[ib], si = sign * s[i];
          yv[ia] = a * c[i] - bb * si;
          yv[ib] = a * si + bb * c[i];
        }
      }
    }
}

}  // namespace

template <typename T>
void rope_forward(const T* x, AttentionLayout x_layout, T* y, AttentionLayout y_layout,
                  int64_t batch, int64_t tokens, int64_t heads, int64_t rope_dim, const T* cos,
                  const T* sin, int64_t position_offset, bool interleave) {
  rotate(x, x_layout, y, y_layout, batch, tokens, heads, rope_dim, cos, sin, position_offset,
         interleave, T(1));
}

template <typename T>
void rope_backward(const T* dy, AttentionLayout dy_layout, T* dx, AttentionLayout dx_layout,
                   int64_t batch, int64_t tokens, int64_t heads, int64_t rope_dim, const T* cos,
                   const T* sin, int64_t position_offset, bool interleave) {
  rotate(dy, dy_layout, dx, dx_layout, batch, tokens, heads, rope_dim, cos, sin, position_offset,
         interleave, T(-1));
}

#define LATTE_ROPE(T)                                                                           \
  template void rope_forward<T>(const T*, AttentionLayout, T*, AttentionLayout, int64_t,        \
                                int64_t, int64_t, int64_t, const T*, const T*, int64_t, bool);  \
  template void rope_backward<T>(const T*, AttentionLayout, T*, AttentionLayout, int64_t,       \
                                 int64_t, int64_t, int64_t, const T*, const T*, int64_t, bool);
LATTE_ROPE(float)
LATTE_ROPE(double)
#undef LATTE_ROPE

}  // namespace latte::kernels::cpu

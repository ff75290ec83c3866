// Rotary position embedding on the first `rope_dim` elements of each head vector of a strided
// [batch, tokens, heads, *] operand. Frequency i rotates the pair (x_a, x_b) by the angle whose
// cos/sin are table[pos, i]: interleaved layout pairs (x_2i, x_2i+1) (DeepSeek's complex form),
// the halves layout pairs (x_i, x_i+rope_dim/2) (rotate_half form). The backward pass is the
// rotation by the negative angle. Rows are independent (parallel over tokens).
#pragma once

#include <cstdint>

#include "kernels/cpu/attention.h"

namespace latte::kernels::cpu {

// y = rope(x); token t uses table row position_offset + t of cos/sin [*, rope_dim/2].
// y may alias x (same layout).
template <typename T>
void rope_forward(const T* x, AttentionLayout x_layout, T* y, AttentionLayout y_layout,
                  int64_t batch, int64_t tokens, int64_t heads, int64_t rope_dim, const T* cos,
                  const T* sin, int64_t position_offset, bool interleave);

// dx = rope⁻¹(dy) (rotation by the negative angle).
template <typename T>
void rope_backward(const T* dy, AttentionLayout dy_layout, T* dx, AttentionLayout dx_layout,
                   int64_t batch, int64_t tokens, int64_t heads, int64_t rope_dim, const T* cos,
                   const T* sin, int64_t position_offset, bool interleave);

}  // namespace latte::kernels::cpu

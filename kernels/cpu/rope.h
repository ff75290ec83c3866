// Rotary position embedding (RoPE) on the first rope_dim elements of each head vector of a
// strided [batch, tokens, heads, *] operand. Each pair (a, b) is rotated by its frequency's angle
// at the token's position: a' = a cos - b sin, b' = a sin + b cos, with cos and sin read from a
// precomputed [table_len, rope_dim / 2] table (models/rope_tables.h; it may fold in a scale).
// Pairs are adjacent elements (x0, x1), (x2, x3), ... when interleave (DeepSeek's complex form),
// else the halves (x_i, x_{i + rope_dim/2}) (rotate_half form); pair i always uses table column i.
// The backward pass applies the transposed map, the rotation by the negative angle. Elements past
// rope_dim are neither read nor written; y may be x itself (same layout).
#pragma once

#include <cstdint>

#include "kernels/cpu/attention.h"

namespace latte::kernels::cpu {

// y = rope(x). Token t uses table row position_offset + t (callers check it is < table_len).
template <typename T>
void rope_forward(const T* x, AttentionLayout x_layout, T* y, AttentionLayout y_layout,
                  int64_t batch, int64_t tokens, int64_t heads, int64_t rope_dim, const T* cos,
                  const T* sin, int64_t position_offset, bool interleave);

// dx = rope^T(dy): the gradient of rope_forward, same arguments.
template <typename T>
void rope_backward(const T* dy, AttentionLayout dy_layout, T* dx, AttentionLayout dx_layout,
                   int64_t batch, int64_t tokens, int64_t heads, int64_t rope_dim, const T* cos,
                   const T* sin, int64_t position_offset, bool interleave);

}  // namespace latte::kernels::cpu

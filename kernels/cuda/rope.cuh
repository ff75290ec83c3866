// Rotary position embedding on CUDA, the twin of kernels/cpu/rope.h: rotates each pair (a, b) of
// the first rope_dim elements of every head vector of a strided [batch, tokens, heads, *] operand
// by its frequency's angle at the token's position, a' = a cos - b sin, b' = a sin + b cos, with
// cos and sin from fp32 [table_len, rope_dim / 2] tables. Pairs are adjacent elements when
// interleave, else the halves (x_i, x_{i + rope_dim/2}); pair i uses table column i. The backward
// pass rotates by the negative angle. Elements past rope_dim are not touched; y may be x.
// How it computes: one thread per (batch, token, head, group of pairs) with 32-bit index math, the
// group's elements in two spans that each move as one access: 16-byte packs (8 bf16 or 4 floats:
// 8 or 4 pairs per thread) when every span of both operands is 16-byte aligned (rope_dim / 2 a
// multiple of the pack, strides and bases aligned), else single elements (one pair per thread).
// A thread reads and writes only its own elements, so y may be x. Math in fp32 (T = float or
// bf16).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

// y = rope(x). Token t uses table row position_offset + t (callers check it is < table_len).
template <typename T>
void rope_forward(const T* x, cpu::AttentionLayout x_layout, T* y, cpu::AttentionLayout y_layout,
                  int64_t batch, int64_t tokens, int64_t heads, int64_t rope_dim, const float* cos,
                  const float* sin, int64_t position_offset, bool interleave, cudaStream_t stream);

// dx = rope^T(dy): the gradient of rope_forward, same arguments.
template <typename T>
void rope_backward(const T* dy, cpu::AttentionLayout dy_layout, T* dx,
                   cpu::AttentionLayout dx_layout, int64_t batch, int64_t tokens, int64_t heads,
                   int64_t rope_dim, const float* cos, const float* sin, int64_t position_offset,
                   bool interleave, cudaStream_t stream);

}  // namespace latte::kernels::cuda

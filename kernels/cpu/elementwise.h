// Elementwise kernels: broadcasting binary ops over strided operands, in-place accumulation,
// scaling, sum-to-shape reductions, SiLU and SwiGLU (forward and backward).
// Binary ops walk the contiguous output row by row; a broadcast operand has stride 0 in the
// broadcast dimensions. Reductions are ordered so results do not depend on the thread count.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

enum class BinaryOp { kAdd, kSub, kMul };

// out[i] = a[i] (op) b[i] over `shape` (rank <= 6); out is contiguous, a and b strided
// (stride 0 where broadcast).
template <typename T>
void binary_op(BinaryOp op, const int64_t* shape, int rank, const T* a, const int64_t* a_strides,
               const T* b, const int64_t* b_strides, T* out);

// dst[i] += src[i] for n contiguous elements.
template <typename T>
void add_inplace(T* dst, const T* src, int64_t n);

// out[i] = s * x[i].
template <typename T>
void scale(const T* x, T* out, int64_t n, T s);

// out = src summed over the broadcast dimensions: src is a contiguous tensor of `shape`; out
// has the same rank where `out_strides` is 0 in each reduced dimension (out is zero-filled by
// the caller's layout: this kernel overwrites it). Summation order is fixed.
template <typename T>
void sum_to(const T* src, const int64_t* shape, int rank, T* out, const int64_t* out_strides,
            int64_t out_numel);

// Sum of n contiguous elements, accumulated in double in fixed-size blocks (thread-count
// independent).
template <typename T>
double sum_all(const T* x, int64_t n);
// Σ x², accumulated like sum_all.
template <typename T>
double sum_squares(const T* x, int64_t n);

// y = x * sigmoid(x); dx = dy * (s + x s (1 - s)).
template <typename T>
void silu_forward(const T* x, T* y, int64_t n);
template <typename T>
void silu_backward(const T* x, const T* dy, T* dx, int64_t n);

// y = silu(gate) * up; d gate = dy * up * silu'(gate), d up = dy * silu(gate).
template <typename T>
void swiglu_forward(const T* gate, const T* up, T* y, int64_t n);
template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n);

// y = 1 / (1 + exp(-x)); dx = dy * y (1 - y).
template <typename T>
void sigmoid_forward(const T* x, T* y, int64_t n);
template <typename T>
void sigmoid_backward(const T* y, const T* dy, T* dx, int64_t n);

}  // namespace latte::kernels::cpu

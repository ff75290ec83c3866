// Elementwise activations on CUDA, twins of the SiLU / SwiGLU / sigmoid kernels of
// kernels/cpu/elementwise.h:
//   silu: y = x * sigmoid(x); dx = dy * (s + x s (1 - s))
//   swiglu: y = silu(gate) * up; d gate = dy * up * silu'(gate), d up = dy * silu(gate)
//   sigmoid: y = 1 / (1 + exp(-x)); dx = dy * y (1 - y)
// How it computes: an elementwise map (elementwise_map.cuh): with every pointer 16-byte aligned, a
// thread of the grid-stride loop takes 32 bytes of each operand per step in 16-byte loads and
// stores, else (and for the n % group tail) one element; fp32 math (T = float or bf16, rounded
// once on store).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

template <typename T>
void silu_forward(const T* x, T* y, int64_t n, cudaStream_t stream);
template <typename T>
void silu_backward(const T* x, const T* dy, T* dx, int64_t n, cudaStream_t stream);

template <typename T>
void swiglu_forward(const T* gate, const T* up, T* y, int64_t n, cudaStream_t stream);
template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n,
                     cudaStream_t stream);

template <typename T>
void sigmoid_forward(const T* x, T* y, int64_t n, cudaStream_t stream);
template <typename T>
void sigmoid_backward(const T* y, const T* dy, T* dx, int64_t n, cudaStream_t stream);

}  // namespace latte::kernels::cuda

// Inverted dropout on CUDA, the twin of dropout_forward in kernels/cpu/random.h:
// mask[i] = 1/(1-p) when uniform(seed, offset + i) >= p, else 0; y = x * mask.
// How it computes: a grid-stride loop, one element per thread step. Each element hashes its own
// counter with the SplitMix64 construction of kernels/cpu/random.cpp in 64-bit integer
// arithmetic, so for the same (seed, offset) the GPU drops exactly the elements the CPU drops
// (float masks and outputs are bit-identical to the CPU's). T = float or bf16 (the mask holds
// 1/(1-p) rounded to T; the product is taken in fp32 and rounded once).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

template <typename T>
void dropout_forward(const T* x, T* y, T* mask, int64_t n, double p, uint64_t seed, uint64_t offset,
                     cudaStream_t stream);

}  // namespace latte::kernels::cuda

// Embedding lookup on CUDA, the twin of kernels/cpu/embedding.h: out[i] = weight[ids[i]];
// backward dweight[v] = sum of dout[i] over the tokens i with ids[i] == v.
// How it computes: the forward is a grid-stride copy. The backward is deterministic and
// sort-free: one block per (vocabulary row, tile of 2048 columns) scans all ids in chunks of 256,
// finds its tokens with warp ballots and adds their dout rows in token order into fp32 registers
// (8 columns per thread), then writes the row once. Every row has one owner and a fixed summation
// order (the CPU's), so no atomics and no run-to-run differences; the price is reading the ids
// once per (row, tile), which is cheap next to the rows themselves for training-sized batches.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

template <typename T>
void embedding_forward(const int32_t* ids, const T* weight, T* out, int64_t n, int64_t dim,
                       cudaStream_t stream);

// OVERWRITES dweight ([vocab, dim]) with the accumulated gradient; ids outside [0, vocab)
// contribute nothing (callers validate ids).
template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, T* dweight, int64_t n, int64_t vocab,
                        int64_t dim, cudaStream_t stream);

}  // namespace latte::kernels::cuda

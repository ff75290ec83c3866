// Elementwise kernels and reductions on CUDA, the twins of kernels/cpu/elementwise.h (the
// activations are in activations.cuh): broadcasting binary ops over strided operands, scaling,
// in-place accumulation, the sum of all elements and the sum over broadcast dimensions.
// T = float or bf16; arithmetic in fp32 (bf16 rounded once on store), sums accumulate in double.
// How it computes:
//  - binary_op first merges neighbouring dimensions that are contiguous in both operands and drops
//    size-1 ones. When that leaves one dense run (same-shape operands), it is a flat elementwise
//    map like scale and add_inplace (elementwise_map.cuh): with every pointer 16-byte aligned, a
//    thread of the grid-stride loop takes 32 bytes of each operand per step in 16-byte loads and
//    stores, the n % group tail (and any misaligned operand) one element at a time. Otherwise
//    (broadcasts, strided views) one thread per output element splits its flat index into
//    coordinates.
//  - sum_all: pass 1 cuts x into chunks of 4096 and runs min(chunks, kSumPartials) blocks; block b
//    adds chunks b, b + blocks, ... and reduces in a fixed tree into partial[b]; pass 2 is one
//    block adding the partials in a fixed tree. When one chunk holds everything, pass 1 writes
//    the result directly.
//  - sum_to: the dimensions of `shape` split into kept ones (out's stride != 0) and reduced ones.
//    Blocks of 32 x 8 threads take 32 consecutive outputs; the reduced index range is cut into
//    `splits` equal slices (a function of the shape: enough blocks to fill the GPU, at least 256
//    elements per slice), one per blockIdx.y. Thread row y adds elements y, y + 8, ... of its
//    slice, the 8 rows are added in order, and with several slices a second pass adds each
//    output's slices in order. Reducing every dimension is sum_all.
// Every grouping is a pure function of the sizes, so results are the same on every run.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/merged_dims.h"

namespace latte::kernels::cuda {

inline constexpr int kMaxElementwiseRank = kMaxMergedRank;
inline constexpr int kSumPartials = 1024;  // doubles of sum_all's workspace

// out[i] = a[i] (op) b[i] over `shape` (rank <= 6, host array); out contiguous, a and b read
// through their element strides (host arrays, 0 where broadcast).
template <typename T>
void binary_op(cpu::BinaryOp op, const int64_t* shape, int rank, const T* a,
               const int64_t* a_strides, const T* b, const int64_t* b_strides, T* out,
               cudaStream_t stream);

// dst[i] += src[i] for n contiguous elements.
template <typename T>
void add_inplace(T* dst, const T* src, int64_t n, cudaStream_t stream);

// out[i] = s * x[i] (s stays fp32 for bf16 data).
template <typename T>
void scale(const T* x, T* out, int64_t n, float s, cudaStream_t stream);

// *out (device) = the sum of n contiguous elements. workspace: kSumPartials doubles on the device.
template <typename T>
void sum_all(const T* x, int64_t n, double* workspace, T* out, cudaStream_t stream);

// out = x summed over the dimensions of `shape` (rank <= 6, host array) where out_strides (host
// array, out's element strides for `shape`) is 0; x is contiguous of `shape`, out holds out_numel
// elements and is overwritten. workspace: sum_to_workspace(...) doubles on the device (may be
// nullptr when that is 0).
template <typename T>
void sum_to(const T* x, const int64_t* shape, int rank, T* out, const int64_t* out_strides,
            int64_t out_numel, double* workspace, cudaStream_t stream);
// The doubles of workspace that sum_to needs for these arguments (0 when it runs in one pass).
int64_t sum_to_workspace(const int64_t* shape, int rank, const int64_t* out_strides,
                         int64_t out_numel);

}  // namespace latte::kernels::cuda

// Row-wise kernels over the last dimension on CUDA, twins of kernels/cpu/norm_softmax.h:
// RMSNorm y = w * x * r with r = 1/sqrt(mean(x^2) + eps) saved per row (fp32), backward
//   dx = r * (w*dy - x * r^2 * mean(w*dy*x)), dw = sum over rows of dy * x * r;
// softmax with the row max subtracted, backward dx = y * (dy - sum(dy*y)).
// How it computes: RMSNorm rows whose starts are 16-byte aligned and whose length is a multiple of
// 16 bytes (up to 2048 packs) are read in 16-byte packs by a warp per row (a block per row past 128
// packs), 4 packs per thread at most, kept in registers between the fp32 reduction and the write,
// so x (and dy) cross memory once; other rows take one block per row with element accesses and two
// passes. dw is deterministic in two passes: blocks of (chunk of 128 rows, tile of 32 column packs)
// sum their rows in a fixed order (8 row groups, each in row order, then the groups in order) into
// fp32 partials in a workspace, then blocks of 32 columns add each column's chunk partials in the
// same fixed way: no atomics, the same bits on every run. Softmax: one block per row. T = float or
// bf16; math in fp32; row statistics reduced in fixed trees. RMSNorm reads x in place with rows
// x_row_stride elements apart (== cols when contiguous), so a narrowed view such as MLA's latent
// c_kv (the first kv_lora_rank columns of each kv_a row) is normalized without first copying it
// out, saving a pass over the activations; y, dy and dx are contiguous [rows, cols]. The weight
// may be fp32 under bf16 rows (the master weight of mixed precision): it is read as stored, and
// dweight leaves the fp32 sums in it without a rounding to bf16.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

template <typename T, typename W>
void rms_norm_forward(const T* x, int64_t x_row_stride, const W* weight, T* y, float* rstd,
                      int64_t rows, int64_t cols, double eps, cudaStream_t stream);
// Bytes of device workspace rms_norm_backward needs for these rows (the partial sums of dweight).
int64_t rms_norm_backward_workspace_bytes(int64_t rows, int64_t cols);
// Writes dx and OVERWRITES dweight. workspace: rms_norm_backward_workspace_bytes(rows, cols) bytes
// of device memory, 4-byte aligned. Throws latte::Error when rows reach 2^31 or cols need more
// than 65535 column tiles.
template <typename T, typename W>
void rms_norm_backward(const T* x, int64_t x_row_stride, const W* weight, const float* rstd,
                       const T* dy, T* dx, W* dweight, int64_t rows, int64_t cols, void* workspace,
                       cudaStream_t stream);

template <typename T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols, cudaStream_t stream);
template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols,
                      cudaStream_t stream);

}  // namespace latte::kernels::cuda

// Row-wise kernels over the last dimension on CUDA, twins of kernels/cpu/norm_softmax.h:
// RMSNorm y = w * x * r with r = 1/sqrt(mean(x^2) + eps) saved per row (fp32), backward
//   dx = r * (w*dy - x * r^2 * mean(w*dy*x)), dw = sum over rows of dy * x * r;
// softmax with the row max subtracted, backward dx = y * (dy - sum(dy*y)).
// How it computes: one block per row for the row passes (fp32 statistics reduced in a fixed
// tree); dw by blocks of 32 columns x 16 row groups, each thread summing its rows in order and
// the 16 partials added in order, so dw does not depend on scheduling. T = float or bf16; math in
// fp32. RMSNorm reads x in place with rows x_row_stride elements apart (== cols when
// contiguous), so a narrowed view such as MLA's latent c_kv (the first kv_lora_rank columns of each
// kv_a row) is normalized without first copying it out, saving a pass over the activations; y, dy
// and dx are contiguous [rows, cols].
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

template <typename T>
void rms_norm_forward(const T* x, int64_t x_row_stride, const T* weight, T* y, float* rstd,
                      int64_t rows, int64_t cols, double eps, cudaStream_t stream);
// Writes dx and OVERWRITES dweight.
template <typename T>
void rms_norm_backward(const T* x, int64_t x_row_stride, const T* weight, const float* rstd,
                       const T* dy, T* dx, T* dweight, int64_t rows, int64_t cols,
                       cudaStream_t stream);

template <typename T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols, cudaStream_t stream);
template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols,
                      cudaStream_t stream);

}  // namespace latte::kernels::cuda

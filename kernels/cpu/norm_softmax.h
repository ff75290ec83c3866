// Row-wise kernels over the last dimension: RMSNorm and softmax, forward and backward.
// RMSNorm: y = w * x * r with r = 1/sqrt(mean(x^2) + eps) saved per row; backward
//   dx = r * (w*dy - x * r^2 * mean(w*dy*x)), dw = sum over rows of dy * x * r.
// Softmax: max-subtracted exponentials; backward dx = y * (dy - sum(dy*y)).
// Rows are independent (parallel); dw sums rows in a fixed order.
// RMSNorm reads x in place with rows x_row_stride elements apart (== cols when contiguous), so a
// narrowed view such as MLA's latent c_kv (the first kv_lora_rank columns of each kv_a row) is
// normalized without first copying it out, saving a pass over the activations; y, dy and dx are
// contiguous [rows, cols]. The weight may be wider than x (W = double under T = float: the master
// weight of mixed precision): it enters the products as stored, each result is rounded to T once,
// and dweight is accumulated and returned in W.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

template <typename T, typename W>
void rms_norm_forward(const T* x, int64_t x_row_stride, const W* weight, T* y, T* rstd,
                      int64_t rows, int64_t cols, double eps);
// Writes dx and OVERWRITES dweight.
template <typename T, typename W>
void rms_norm_backward(const T* x, int64_t x_row_stride, const W* weight, const T* rstd,
                       const T* dy, T* dx, W* dweight, int64_t rows, int64_t cols);

template <typename T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols);
template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols);

}  // namespace latte::kernels::cpu

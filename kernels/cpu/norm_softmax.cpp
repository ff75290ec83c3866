#include "kernels/cpu/norm_softmax.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace latte::kernels::cpu {

template <typename T, typename W>
void rms_norm_forward(const T* x, int64_t x_row_stride, const W* weight, T* y, T* rstd,
                      int64_t rows, int64_t cols, double eps) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 14))
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * x_row_stride;
    T* yr = y + r * cols;
    double ss = 0;
    for (int64_t j = 0; j < cols; ++j) ss += static_cast<double>(xr[j]) * xr[j];
    const T inv = static_cast<T>(1.0 / std::sqrt(ss / cols + eps));
    rstd[r] = inv;
    for (int64_t j = 0; j < cols; ++j) yr[j] = static_cast<T>(weight[j] * (xr[j] * inv));
  }
}

template <typename T, typename W>
void rms_norm_backward(const T* x, int64_t x_row_stride, const W* weight, const T* rstd,
                       const T* dy, T* dx, W* dweight, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 14))
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * x_row_stride;
    const T* dyr = dy + r * cols;
    T* dxr = dx + r * cols;
    const T inv = rstd[r];
    double dot = 0;
    for (int64_t j = 0; j < cols; ++j) dot += static_cast<double>(weight[j]) * dyr[j] * xr[j];
    const T c = static_cast<T>(dot / cols) * inv * inv;
    for (int64_t j = 0; j < cols; ++j)
      dxr[j] = static_cast<T>(inv * (weight[j] * dyr[j] - xr[j] * c));
  }
  // dweight: columns split among threads, rows summed in order.
  const int64_t block = 64;
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 14))
  for (int64_t c0 = 0; c0 < cols; c0 += block) {
    const int64_t c1 = std::min(cols, c0 + block);
    for (int64_t j = c0; j < c1; ++j) dweight[j] = W(0);
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * x_row_stride;
      const T* dyr = dy + r * cols;
      for (int64_t j = c0; j < c1; ++j) dweight[j] += static_cast<W>(dyr[j]) * xr[j] * rstd[r];
    }
  }
}

template <typename T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 14))
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T mx = xr[0];
    for (int64_t j = 1; j < cols; ++j) mx = std::max(mx, xr[j]);
    T sum = 0;
    for (int64_t j = 0; j < cols; ++j) {
      yr[j] = std::exp(xr[j] - mx);
      sum += yr[j];
    }
    const T inv = T(1) / sum;
    for (int64_t j = 0; j < cols; ++j) yr[j] *= inv;
  }
}

template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 14))
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* dyr = dy + r * cols;
    T* dxr = dx + r * cols;
    T dot = 0;
    for (int64_t j = 0; j < cols; ++j) dot += dyr[j] * yr[j];
    for (int64_t j = 0; j < cols; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
  }
}

#define LATTE_RMS_NORM(T, W)                                                                     \
  template void rms_norm_forward<T, W>(const T*, int64_t, const W*, T*, T*, int64_t, int64_t,    \
                                       double);                                                  \
  template void rms_norm_backward<T, W>(const T*, int64_t, const W*, const T*, const T*, T*, W*, \
                                        int64_t, int64_t);
LATTE_RMS_NORM(float, float)
LATTE_RMS_NORM(double, double)
LATTE_RMS_NORM(float, double)
#undef LATTE_RMS_NORM

#define LATTE_SOFTMAX(T)                                            \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t); \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t);
LATTE_SOFTMAX(float)
LATTE_SOFTMAX(double)
#undef LATTE_SOFTMAX

}  // namespace latte::kernels::cpu

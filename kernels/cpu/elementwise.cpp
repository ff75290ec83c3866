#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace latte::kernels::cpu {

namespace {

constexpr int64_t kParallelThreshold = 1 << 15;

// Element offset of flat row `row` (all dimensions but the last) under `strides`.
int64_t row_offset(int64_t row, const int64_t* shape, int rank, const int64_t* strides) {
  int64_t off = 0;
  for (int d = rank - 2; d >= 0; --d) {
    off += (row % shape[d]) * strides[d];
    row /= shape[d];
  }
  return off;
}

template <typename T>
T apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::kAdd:
      return a + b;
    case BinaryOp::kSub:
      return a - b;
    case BinaryOp::kMul:
      return a * b;
  }
  return a;
}

template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

}  // namespace

template <typename T>
void binary_op(BinaryOp op, const int64_t* shape, int rank, const T* a, const int64_t* a_strides,
               const T* b, const int64_t* b_strides, T* out) {
  if (rank == 0) {
    out[0] = apply(op, a[0], b[0]);
    return;
  }
  int64_t rows = 1;
  for (int d = 0; d < rank - 1; ++d) rows *= shape[d];
  const int64_t cols = shape[rank - 1];
  const int64_t as = a_strides[rank - 1], bs = b_strides[rank - 1];
#pragma omp parallel for schedule(static) if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const T* pa = a + row_offset(r, shape, rank, a_strides);
    const T* pb = b + row_offset(r, shape, rank, b_strides);
    T* po = out + r * cols;
    if (as == 1 && bs == 1) {
      switch (op) {
        case BinaryOp::kAdd:
          for (int64_t j = 0; j < cols; ++j) po[j] = pa[j] + pb[j];
          break;
        case BinaryOp::kSub:
          for (int64_t j = 0; j < cols; ++j) po[j] = pa[j] - pb[j];
          break;
        case BinaryOp::kMul:
          for (int64_t j = 0; j < cols; ++j) po[j] = pa[j] * pb[j];
          break;
      }
    } else {
      for (int64_t j = 0; j < cols; ++j) po[j] = apply(op, pa[j * as], pb[j * bs]);
    }
  }
}

template <typename T>
void add_inplace(T* dst, const T* src, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

template <typename T>
void scale(const T* x, T* out, int64_t n, T s) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) out[i] = s * x[i];
}

template <typename T>
void sum_to(const T* src, const int64_t* shape, int rank, T* out, const int64_t* out_strides,
            int64_t out_numel) {
  std::fill(out, out + out_numel, T(0));
  if (rank == 0) {
    out[0] = src[0];
    return;
  }
  int64_t rows = 1;
  for (int d = 0; d < rank - 1; ++d) rows *= shape[d];
  const int64_t cols = shape[rank - 1];
  const int64_t os = out_strides[rank - 1];
  if (os == 1) {
    // The last dimension is kept: split the columns among threads; each column's rows are
    // summed in order.
    const int64_t block = 64;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelThreshold)
    for (int64_t c0 = 0; c0 < cols; c0 += block) {
      const int64_t c1 = std::min(cols, c0 + block);
      for (int64_t r = 0; r < rows; ++r) {
        const T* ps = src + r * cols;
        T* po = out + row_offset(r, shape, rank, out_strides);
        for (int64_t j = c0; j < c1; ++j) po[j] += ps[j];
      }
    }
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      const T* ps = src + r * cols;
      T* po = out + row_offset(r, shape, rank, out_strides);
      for (int64_t j = 0; j < cols; ++j) po[j * os] += ps[j];
    }
  }
}

// Σ f(x_i) in fixed blocks of 4096 (block partials summed in order), in double.
template <typename T, typename F>
double blocked_sum(const T* x, int64_t n, F f) {
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t b = 0; b < blocks; ++b) {
    double s = 0;
    const int64_t end = std::min(n, (b + 1) * kBlock);
    for (int64_t i = b * kBlock; i < end; ++i) s += f(static_cast<double>(x[i]));
    partial[b] = s;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

template <typename T>
double sum_all(const T* x, int64_t n) {
  return blocked_sum(x, n, [](double v) { return v; });
}

template <typename T>
double sum_squares(const T* x, int64_t n) {
  return blocked_sum(x, n, [](double v) { return v * v; });
}

template <typename T>
void silu_forward(const T* x, T* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid(x[i]);
}

template <typename T>
void silu_backward(const T* x, const T* dy, T* dx, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid(x[i]);
    dx[i] = dy[i] * (s + x[i] * s * (T(1) - s));
  }
}

template <typename T>
void swiglu_forward(const T* gate, const T* up, T* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid(gate[i]);
    const T silu = gate[i] * s;
    dgate[i] = dy[i] * up[i] * (s + gate[i] * s * (T(1) - s));
    dup[i] = dy[i] * silu;
  }
}

template <typename T>
void sigmoid_forward(const T* x, T* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = sigmoid(x[i]);
}

template <typename T>
void sigmoid_backward(const T* y, const T* dy, T* dx, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (T(1) - y[i]);
}

#define LATTE_ELEMENTWISE(T)                                                                    \
  template void binary_op<T>(BinaryOp, const int64_t*, int, const T*, const int64_t*, const T*, \
                             const int64_t*, T*);                                               \
  template void add_inplace<T>(T*, const T*, int64_t);                                          \
  template void scale<T>(const T*, T*, int64_t, T);                                             \
  template void sum_to<T>(const T*, const int64_t*, int, T*, const int64_t*, int64_t);          \
  template double sum_all<T>(const T*, int64_t);                                                \
  template double sum_squares<T>(const T*, int64_t);                                            \
  template void silu_forward<T>(const T*, T*, int64_t);                                         \
  template void silu_backward<T>(const T*, const T*, T*, int64_t);                              \
  template void swiglu_forward<T>(const T*, const T*, T*, int64_t);                             \
  template void swiglu_backward<T>(const T*, const T*, const T*, T*, T*, int64_t);              \
  template void sigmoid_forward<T>(const T*, T*, int64_t);                                      \
  template void sigmoid_backward<T>(const T*, const T*, T*, int64_t);
LATTE_ELEMENTWISE(float)
LATTE_ELEMENTWISE(double)
#undef LATTE_ELEMENTWISE

}  // namespace latte::kernels::cpu

#include "kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace latte::kernels::cpu {

template <typename T>
double cross_entropy_forward(const T* logits, const int32_t* targets, T* lse, int64_t rows,
                             int64_t vocab, int64_t ignore_index, int64_t* counted) {
  std::vector<double> row_loss(rows, 0.0);
#pragma omp parallel for schedule(static) if (rows * vocab > (1 << 14))
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = logits + r * vocab;
    T mx = x[0];
    for (int64_t j = 1; j < vocab; ++j) mx = std::max(mx, x[j]);
    double sum = 0;
    for (int64_t j = 0; j < vocab; ++j) sum += std::exp(static_cast<double>(x[j] - mx));
    const double l = static_cast<double>(mx) + std::log(sum);
    lse[r] = static_cast<T>(l);
    if (targets[r] != ignore_index) row_loss[r] = l - static_cast<double>(x[targets[r]]);
  }
  double total = 0;
  int64_t n = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] == ignore_index) continue;
    total += row_loss[r];
    ++n;
  }
  *counted = n;
  return total;
}

template <typename T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const T* lse, T scale,
                            T* dlogits, int64_t rows, int64_t vocab, int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (rows * vocab > (1 << 14))
  for (int64_t r = 0; r < rows; ++r) {
    T* d = dlogits + r * vocab;
    if (targets[r] == ignore_index) {
      std::fill(d, d + vocab, T(0));
      continue;
    }
    const T* x = logits + r * vocab;
    for (int64_t j = 0; j < vocab; ++j) d[j] = scale * std::exp(x[j] - lse[r]);
    d[targets[r]] -= scale;
  }
}

#define LATTE_CROSS_ENTROPY(T)                                                                \
  template double cross_entropy_forward<T>(const T*, const int32_t*, T*, int64_t, int64_t,    \
                                           int64_t, int64_t*);                                \
  template void cross_entropy_backward<T>(const T*, const int32_t*, const T*, T, T*, int64_t, \
                                          int64_t, int64_t);
LATTE_CROSS_ENTROPY(float)
LATTE_CROSS_ENTROPY(double)
#undef LATTE_CROSS_ENTROPY

}  // namespace latte::kernels::cpu

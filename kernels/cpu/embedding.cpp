#include "kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>

namespace latte::kernels::cpu {

template <typename T>
void embedding_forward(const int32_t* ids, const T* weight, T* out, int64_t n, int64_t dim) {
#pragma omp parallel for schedule(static) if (n * dim > (1 << 15))
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(out + i * dim, weight + static_cast<int64_t>(ids[i]) * dim, sizeof(T) * dim);
}

template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, T* dweight, int64_t n, int64_t vocab,
                        int64_t dim) {
  std::fill(dweight, dweight + vocab * dim, T(0));
  const int64_t block = 64;
#pragma omp parallel for schedule(static) if (n * dim > (1 << 15))
  for (int64_t c0 = 0; c0 < dim; c0 += block) {
    const int64_t c1 = std::min(dim, c0 + block);
    for (int64_t i = 0; i < n; ++i) {
      T* row = dweight + static_cast<int64_t>(ids[i]) * dim;
      const T* g = dout + i * dim;
      for (int64_t j = c0; j < c1; ++j) row[j] += g[j];
    }
  }
}

#define LATTE_EMBEDDING(T)                                                            \
  template void embedding_forward<T>(const int32_t*, const T*, T*, int64_t, int64_t); \
  template void embedding_backward<T>(const int32_t*, const T*, T*, int64_t, int64_t, int64_t);
LATTE_EMBEDDING(float)
LATTE_EMBEDDING(double)
#undef LATTE_EMBEDDING

}  // namespace latte::kernels::cpu

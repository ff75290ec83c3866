#include "kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace latte::kernels::cpu {

template <typename W, typename T>
void embedding_forward(const int32_t* ids, const W* weight, T* out, int64_t n, int64_t dim) {
#pragma omp parallel for schedule(static) if (n * dim > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const W* row = weight + static_cast<int64_t>(ids[i]) * dim;
    if constexpr (std::is_same_v<W, T>)
      std::memcpy(out + i * dim, row, sizeof(T) * dim);
    else
      std::transform(row, row + dim, out + i * dim, [](W v) { return static_cast<T>(v); });
  }
}

template <typename T, typename W>
void embedding_backward(const int32_t* ids, const T* dout, W* dweight, int64_t n, int64_t vocab,
                        int64_t dim) {
  std::fill(dweight, dweight + vocab * dim, W(0));
  const int64_t block = 64;
#pragma omp parallel for schedule(static) if (n * dim > (1 << 15))
  for (int64_t c0 = 0; c0 < dim; c0 += block) {
    const int64_t c1 = std::min(dim, c0 + block);
    for (int64_t i = 0; i < n; ++i) {
      W* row = dweight + static_cast<int64_t>(ids[i]) * dim;
      const T* g = dout + i * dim;
      for (int64_t j = c0; j < c1; ++j) row[j] += g[j];
    }
  }
}

#define LATTE_EMBEDDING(T, W)                                                            \
  template void embedding_forward<W, T>(const int32_t*, const W*, T*, int64_t, int64_t); \
  template void embedding_backward<T, W>(const int32_t*, const T*, W*, int64_t, int64_t, int64_t);
LATTE_EMBEDDING(float, float)
LATTE_EMBEDDING(double, double)
LATTE_EMBEDDING(float, double)
#undef LATTE_EMBEDDING

}  // namespace latte::kernels::cpu

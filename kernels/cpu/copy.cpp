#include "kernels/cpu/copy.h"

#include <cstring>
#include <type_traits>

#include "kernels/cpu/bf16.h"

namespace latte::kernels::cpu {

template <typename Src, typename Dst>
void strided_copy(const Src* src, const int64_t* src_strides, Dst* dst, const int64_t* dst_strides,
                  const int64_t* shape, int rank) {
  if (rank == 0) {
    dst[0] = convert_element<Dst>(src[0]);
    return;
  }
  int64_t outer = 1;
  for (int d = 0; d < rank - 1; ++d) outer *= shape[d];
  const int64_t inner = shape[rank - 1];
  const int64_t s_in = src_strides[rank - 1], d_in = dst_strides[rank - 1];
  if (outer == 0 || inner == 0) return;
#pragma omp parallel for schedule(static) if (outer * inner > (1 << 16))
  for (int64_t row = 0; row < outer; ++row) {
    int64_t s_off = 0, d_off = 0, rem = row;
    for (int d = rank - 2; d >= 0; --d) {
      const int64_t i = rem % shape[d];
      rem /= shape[d];
      s_off += i * src_strides[d];
      d_off += i * dst_strides[d];
    }
    const Src* s = src + s_off;
    Dst* o = dst + d_off;
    if constexpr (std::is_same_v<Src, Dst>) {
      if (s_in == 1 && d_in == 1) {
        std::memcpy(o, s, sizeof(Src) * inner);
        continue;
      }
    }
    for (int64_t j = 0; j < inner; ++j) o[j * d_in] = convert_element<Dst>(s[j * s_in]);
  }
}

template <typename T>
void fill(T* dst, int64_t n, T value) {
  for (int64_t i = 0; i < n; ++i) dst[i] = value;
}

#define LATTE_COPY_DST(S)                                                                    \
  template void strided_copy<S, float>(const S*, const int64_t*, float*, const int64_t*,     \
                                       const int64_t*, int);                                 \
  template void strided_copy<S, double>(const S*, const int64_t*, double*, const int64_t*,   \
                                        const int64_t*, int);                                \
  template void strided_copy<S, bf16>(const S*, const int64_t*, bf16*, const int64_t*,       \
                                      const int64_t*, int);                                  \
  template void strided_copy<S, int32_t>(const S*, const int64_t*, int32_t*, const int64_t*, \
                                         const int64_t*, int);                               \
  template void strided_copy<S, int64_t>(const S*, const int64_t*, int64_t*, const int64_t*, \
                                         const int64_t*, int);                               \
  template void fill<S>(S*, int64_t, S);
LATTE_COPY_DST(float)
LATTE_COPY_DST(double)
LATTE_COPY_DST(bf16)
LATTE_COPY_DST(int32_t)
LATTE_COPY_DST(int64_t)
#undef LATTE_COPY_DST

}  // namespace latte::kernels::cpu

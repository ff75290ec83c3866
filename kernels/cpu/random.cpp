#include "kernels/cpu/random.h"

#include <cmath>

namespace latte::kernels::cpu {

namespace {
uint64_t hash(uint64_t seed, uint64_t counter) {
  return splitmix64(splitmix64(seed) ^ (counter * 0xd1b54a32d192ed03ull));
}
}  // namespace

double random_uniform(uint64_t seed, uint64_t counter) {
  return static_cast<double>(hash(seed, counter) >> 11) * 0x1.0p-53;
}

double random_normal(uint64_t seed, uint64_t counter) {
  const uint64_t h = hash(seed, counter);
  const double u1 = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;  // (0, 1)
  const double u2 = static_cast<double>(splitmix64(h) >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

template <typename T>
void fill_normal(T* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<T>(mean + std * random_normal(seed, offset + static_cast<uint64_t>(i)));
}

template <typename T>
void fill_uniform(T* out, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i)
    out[i] =
        static_cast<T>(lo + (hi - lo) * random_uniform(seed, offset + static_cast<uint64_t>(i)));
}

template <typename T>
void dropout_forward(const T* x, T* y, T* mask, int64_t n, double p, uint64_t seed,
                     uint64_t offset) {
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    mask[i] = random_uniform(seed, offset + static_cast<uint64_t>(i)) >= p ? keep_scale : T(0);
    y[i] = x[i] * mask[i];
  }
}

#define LATTE_RANDOM(T)                                                           \
  template void fill_normal<T>(T*, int64_t, uint64_t, uint64_t, double, double);  \
  template void fill_uniform<T>(T*, int64_t, uint64_t, uint64_t, double, double); \
  template void dropout_forward<T>(const T*, T*, T*, int64_t, double, uint64_t, uint64_t);
LATTE_RANDOM(float)
LATTE_RANDOM(double)
#undef LATTE_RANDOM

}  // namespace latte::kernels::cpu

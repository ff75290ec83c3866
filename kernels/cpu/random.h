// Counter-based random numbers: element i of a stream (seed, offset) is a pure function of
// (seed, offset + i), so results do not depend on thread count or scheduling. SplitMix64
// hashing; normals by Box-Muller from two uniforms of the same counter.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

// The SplitMix64 finalizer step: the generator's output for state x (Steele et al.).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) (53 bits).
double random_uniform(uint64_t seed, uint64_t counter);
// Standard normal.
double random_normal(uint64_t seed, uint64_t counter);

// out[i] = mean + std * normal(seed, offset + i).
template <typename T>
void fill_normal(T* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std);
// out[i] = lo + (hi - lo) * uniform(seed, offset + i).
template <typename T>
void fill_uniform(T* out, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi);

// Inverted dropout: mask[i] = uniform >= p ? 1/(1-p) : 0; y = x * mask.
template <typename T>
void dropout_forward(const T* x, T* y, T* mask, int64_t n, double p, uint64_t seed,
                     uint64_t offset);

}  // namespace latte::kernels::cpu

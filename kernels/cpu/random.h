// Counter-based random numbers: element i of a stream (seed, offset) is a pure function of
// (seed, offset + i), so results do not depend on thread count or scheduling. SplitMix64
// hashing; normals by Box-Muller from two uniforms of the same counter.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

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

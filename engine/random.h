// Generator: a seeded counter-based random stream. Each draw of n numbers consumes the counter
// range [offset, offset + n), so the state is two integers (saved in checkpoints) and results do
// not depend on threading.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace latte {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves n counters and returns the first.
  uint64_t take(uint64_t n) {
    const uint64_t first = offset_;
    offset_ += n;
    return first;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// A new tensor of N(mean, std^2) samples (CPU; moved to `device`).
Tensor randn(const Shape& shape, Generator& gen, double mean = 0.0, double std = 1.0,
             DType dtype = DType::F32, Device device = Device::CPU);
// A new tensor of Uniform(lo, hi) samples.
Tensor rand_uniform(const Shape& shape, Generator& gen, double lo, double hi,
                    DType dtype = DType::F32, Device device = Device::CPU);

}  // namespace latte

// Per-device memory allocators. Every tensor allocation goes through one, so current and peak
// bytes are known per device: they feed the memory figures of the experiment report.
#pragma once

#include <cstddef>
#include <memory>

#include "engine/dtype.h"

namespace latte {

class Allocator {
 public:
  virtual ~Allocator() = default;
  void* allocate(size_t bytes);
  void deallocate(void* ptr, size_t bytes) noexcept;

  size_t current_bytes() const { return current_; }
  size_t peak_bytes() const { return peak_; }
  // Starts a new peak measurement from the current usage.
  void reset_peak() { peak_ = current_; }
  // Returns memory held in caches to the system (no-op for allocators without a cache).
  virtual void release_cached() {}

 protected:
  virtual void* raw_allocate(size_t bytes) = 0;
  virtual void raw_deallocate(void* ptr, size_t bytes) noexcept = 0;

 private:
  size_t current_ = 0;
  size_t peak_ = 0;
};

// The allocator of a device. CUDA's is registered by the CUDA runtime when latte is built with
// it; asking for it otherwise throws latte::Error.
Allocator& allocator_for(Device device);
void register_cuda_allocator(std::unique_ptr<Allocator> allocator);

}  // namespace latte

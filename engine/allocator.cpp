#include "engine/allocator.h"

#include <cstdlib>
#include <new>

#include "engine/error.h"

namespace latte {

void* Allocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = raw_allocate(bytes);
  current_ += bytes;
  if (current_ > peak_) peak_ = current_;
  return ptr;
}

void Allocator::deallocate(void* ptr, size_t bytes) noexcept {
  if (ptr == nullptr) return;
  raw_deallocate(ptr, bytes);
  current_ -= bytes;
}

namespace {

// 64-byte aligned host memory (cache lines, AVX-512 loads).
class CpuAllocator final : public Allocator {
 protected:
  void* raw_allocate(size_t bytes) override {
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* ptr = std::aligned_alloc(64, rounded);
    LATTE_CHECK(ptr != nullptr) << "cpu allocator: out of memory allocating " << bytes << " bytes";
    return ptr;
  }
  void raw_deallocate(void* ptr, size_t) noexcept override { std::free(ptr); }
};

std::unique_ptr<Allocator>& cuda_allocator_slot() {
  static std::unique_ptr<Allocator> slot;
  return slot;
}

}  // namespace

Allocator& allocator_for(Device device) {
  if (device == Device::CPU) {
    static CpuAllocator cpu;
    return cpu;
  }
  auto& cuda = cuda_allocator_slot();
  LATTE_CHECK(cuda != nullptr) << "device cuda: latte was built without the CUDA backend, or no "
                                  "CUDA device is available";
  return *cuda;
}

void register_cuda_allocator(std::unique_ptr<Allocator> allocator) {
  cuda_allocator_slot() = std::move(allocator);
}

}  // namespace latte

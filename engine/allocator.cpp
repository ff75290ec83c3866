#include "engine/allocator.h"

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

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

// 64-byte aligned host memory with a cache of freed blocks, so the steady-state training step
// allocates nothing from the system (large blocks would otherwise be mmapped and page-faulted
// afresh on every step). Sizes round up to 64 bytes below 64 KiB and to an eighth of a power
// of two above, which bounds the waste at 12.5%.
class CpuAllocator final : public Allocator {
 public:
  ~CpuAllocator() override { release_cached(); }
  void release_cached() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : cache_)
      for (void* p : blocks) std::free(p);
    cache_.clear();
  }

 protected:
  void* raw_allocate(size_t bytes) override {
    const size_t rounded = size_class(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = cache_.find(rounded);
      if (it != cache_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        return p;
      }
    }
    void* ptr = std::aligned_alloc(64, rounded);
    LATTE_CHECK(ptr != nullptr) << "cpu allocator: out of memory allocating " << bytes << " bytes";
    return ptr;
  }
  void raw_deallocate(void* ptr, size_t bytes) noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    cache_[size_class(bytes)].push_back(ptr);
  }

 private:
  static size_t size_class(size_t bytes) {
    if (bytes <= (size_t{1} << 16)) return (bytes + 63) / 64 * 64;
    size_t power = size_t{1} << (63 - __builtin_clzll(bytes));  // largest power of 2 <= bytes
    const size_t step = power / 8;
    return (bytes + step - 1) / step * step;
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> cache_;
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

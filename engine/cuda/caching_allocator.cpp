#include "engine/cuda/caching_allocator.h"

#include <cuda_runtime_api.h>

#include "engine/error.h"

namespace latte::cuda {

namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;  // 2 MiB

size_t round_up(size_t x, size_t m) {
  return (x + m - 1) / m * m;
}

}  // namespace

size_t CachingAllocator::bucket_size(size_t bytes) {
  return bytes <= kSmallLimit ? round_up(bytes, kSmallRound) : round_up(bytes, kLargeRound);
}

CachingAllocator::~CachingAllocator() {
  // At process exit the driver may already be gone; errors are ignored.
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) (void)cudaFree(p);
}

void* CachingAllocator::raw_allocate(size_t bytes) {
  const size_t size = bucket_size(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= size;
      return p;
    }
  }
  void* p = nullptr;
  cudaError_t status = cudaMalloc(&p, size);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    release_cached();
    status = cudaMalloc(&p, size);
  }
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    (void)cudaMemGetInfo(&free_bytes, &total_bytes);
    LATTE_FAIL() << "cuda allocator: cannot allocate " << bytes << " bytes (" << size
                 << " with rounding): " << cudaGetErrorString(status) << "; latte holds "
                 << current_bytes() << " bytes in tensors, the device has " << free_bytes << " of "
                 << total_bytes << " bytes free";
  }
  return p;
}

void CachingAllocator::raw_deallocate(void* ptr, size_t bytes) noexcept {
  const size_t size = bucket_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    free_[size].push_back(ptr);
    cached_ += size;
  } catch (...) {
    (void)cudaFree(ptr);  // no host memory for the free list: give the block back instead
  }
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) (void)cudaFree(p);
  free_.clear();
  cached_ = 0;
}

size_t CachingAllocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_;
}

}  // namespace latte::cuda

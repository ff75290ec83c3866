// The caching CUDA device allocator: freed blocks go to size-bucketed free lists and are handed
// out again for requests of the same bucket, so the steady-state training step never calls
// cudaMalloc / cudaFree (both synchronize the device). Current and peak bytes are the base
// class's (requested sizes); cached_bytes() is what the cache holds on top.
// Buckets: requests up to 1 MiB round up to a multiple of 512 bytes, larger ones to a multiple of
// 2 MiB. When cudaMalloc fails, the cache is released and the allocation retried once.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

#include "engine/allocator.h"

namespace latte::cuda {

class CachingAllocator final : public Allocator {
 public:
  CachingAllocator() = default;
  ~CachingAllocator() override;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Frees every cached block back to the device.
  void release_cached() override;
  // Bytes held in the free lists.
  size_t cached_bytes() const;
  // The bucket size a request of `bytes` is served from.
  static size_t bucket_size(size_t bytes);

 protected:
  void* raw_allocate(size_t bytes) override;
  void raw_deallocate(void* ptr, size_t bytes) noexcept override;

 private:
  mutable std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;  // bucket size -> free blocks
  size_t cached_ = 0;
};

}  // namespace latte::cuda

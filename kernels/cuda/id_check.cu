#include "kernels/cuda/id_check.cuh"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;

static_assert(sizeof(unsigned long long) == sizeof(uint64_t));

__global__ void sanitize_ids_kernel(const int32_t* __restrict__ ids, int32_t* __restrict__ safe,
                                    int64_t n, int64_t vocab, bool has_ignored, int64_t ignored,
                                    int32_t replacement, unsigned long long* first_bad) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t id = ids[i];
    const bool valid = (id >= 0 && id < vocab) || (has_ignored && id == ignored);
    safe[i] = valid ? id : replacement;
    if (!valid)
      atomicMin(first_bad, (static_cast<unsigned long long>(i) << 32) | static_cast<uint32_t>(id));
  }
}

}  // namespace

void sanitize_ids(const int32_t* ids, int32_t* safe, int64_t n, int64_t vocab, bool has_ignored,
                  int64_t ignored, int32_t replacement, uint64_t* first_bad, cudaStream_t stream) {
  LATTE_CHECK(n < (int64_t(1) << 32)) << "cuda sanitize_ids: " << n << " ids exceed 2^32";
  if (n == 0) return;
  sanitize_ids_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(
      ids, safe, n, vocab, has_ignored, ignored, replacement,
      reinterpret_cast<unsigned long long*>(first_bad));
  LATTE_CUDA_CHECK_LAUNCH();
}

}  // namespace latte::kernels::cuda

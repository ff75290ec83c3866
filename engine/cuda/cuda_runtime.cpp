#include "engine/cuda/cuda_runtime.h"

#include <nvtx3/nvToolsExt.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "engine/allocator.h"
#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/event_timer.h"
#include "engine/profiler.h"
#include "kernels/cuda/cuda_check.h"

namespace latte::cuda {

namespace {

// cuBLASLt's workspace: enough for its fastest Hopper/Ampere kernels.
constexpr size_t kLtWorkspaceBytes = size_t(32) << 20;

// Created once by init() and kept for the life of the process: destroying CUDA handles during
// static destruction, after the driver may have shut down, is not safe.
struct Runtime {
  cudaStream_t stream = nullptr;
  kernels::cuda::BlasHandles blas;
};

Runtime& runtime() {
  static Runtime r;
  return r;
}

// select_device_for_local_rank's request (-1: none) and whether init() has run.
std::atomic<int> g_local_rank{-1};
std::atomic<bool> g_initialized{false};

int query_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device / no driver" error
    return 0;
  }
  return n;
}

}  // namespace

int device_count() {
  static const int count = query_device_count();
  if (count > 0) init();
  return count;
}

void init() {
  static std::once_flag once;
  std::call_once(once, [] {
    int n = 0;
    const cudaError_t status = cudaGetDeviceCount(&n);
    LATTE_CHECK(status == cudaSuccess && n > 0)
        << "cuda: no usable CUDA device (" << cudaGetErrorString(status) << ")";
    if (g_local_rank >= 0) LATTE_CUDA_CHECK(cudaSetDevice(g_local_rank % n));
    g_initialized = true;
    Runtime& r = runtime();
    LATTE_CUDA_CHECK(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking));
    LATTE_CUBLAS_CHECK(cublasCreate(&r.blas.blas));
    LATTE_CUBLAS_CHECK(cublasLtCreate(&r.blas.lt));
    LATTE_CUDA_CHECK(cudaMalloc(&r.blas.workspace, kLtWorkspaceBytes));
    r.blas.workspace_bytes = kLtWorkspaceBytes;
    register_cuda_allocator(std::make_unique<CachingAllocator>());
    register_cuda_backend(backend());
    profiler::register_device_timer(std::make_unique<EventTimer>(r.stream));
  });
}

void select_device_for_local_rank(int local_rank) {
  LATTE_CHECK(local_rank >= 0) << "cuda: local rank " << local_rank << " is negative";
  LATTE_CHECK(!g_initialized) << "cuda: select_device_for_local_rank(" << local_rank
                              << ") after the runtime was initialized";
  g_local_rank = local_rank;
}

cudaStream_t stream() {
  init();
  return runtime().stream;
}

const kernels::cuda::BlasHandles& blas() {
  init();
  return runtime().blas;
}

void synchronize() {
  LATTE_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void push_range(const char* name) noexcept {
  nvtxRangePushA(name);
}

void pop_range() noexcept {
  nvtxRangePop();
}

}  // namespace latte::cuda

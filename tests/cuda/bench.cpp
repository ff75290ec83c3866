#include "cuda/bench.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <random>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cuda/gemm.cuh"

namespace latte::test {

namespace {

// Milliseconds per call of f on the latte stream: one warm-up call, one timed call to size the
// run, then enough calls for about 0.2 s (1 to 20), averaged.
double time_ms(const std::function<void()>& f) {
  const cudaStream_t s = cuda::stream();
  cudaEvent_t start, stop;
  LATTE_CUDA_CHECK(cudaEventCreate(&start));
  LATTE_CUDA_CHECK(cudaEventCreate(&stop));
  auto run = [&](int iters) {
    LATTE_CUDA_CHECK(cudaEventRecord(start, s));
    for (int i = 0; i < iters; ++i) f();
    LATTE_CUDA_CHECK(cudaEventRecord(stop, s));
    LATTE_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    LATTE_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return static_cast<double>(ms) / iters;
  };
  run(1);
  const double once = run(1);
  const int iters = static_cast<int>(std::clamp(200.0 / std::max(once, 1e-3), 1.0, 20.0));
  const double ms = run(iters);
  LATTE_CUDA_CHECK(cudaEventDestroy(start));
  LATTE_CUDA_CHECK(cudaEventDestroy(stop));
  return ms;
}

// Fills a device buffer with Uniform(-1, 1) values by repeating a random host block.
void fill_random(DeviceBuffer<bf16>& buffer) {
  std::mt19937 rng(7);
  const size_t block = std::min<size_t>(buffer.size(), size_t(1) << 20);
  const std::vector<bf16> host = as_type<bf16>(uniform(rng, block, -1.f, 1.f));
  for (size_t at = 0; at < buffer.size(); at += block) {
    const size_t n = std::min(block, buffer.size() - at);
    LATTE_CUDA_CHECK(
        cudaMemcpy(buffer.get() + at, host.data(), n * sizeof(bf16), cudaMemcpyHostToDevice));
  }
}

double tflops(double flops, double ms) {
  return flops / (ms * 1e-3) / 1e12;
}

// A cuBLAS bf16 GEMM (fp32 accumulation) of 8192^3: the practical tensor-core peak of this GPU.
void bench_gemm_peak() {
  const int64_t n = 8192;
  DeviceBuffer<bf16> a(n * n), b(n * n), c(n * n);
  fill_random(a);
  fill_random(b);
  const double ms = time_ms([&] {
    kernels::cuda::gemm<bf16>(cuda::blas(), cuda::stream(), false, true, n, n, n, 1.f, a.get(), n,
                              b.get(), n, 0.f, c.get(), n);
  });
  const double peak = tflops(2.0 * n * n * n, ms);
  std::printf("cuBLAS bf16 GEMM %lldx%lldx%lld: %.3f ms, %.1f TFLOP/s (the practical peak)\n",
              static_cast<long long>(n), static_cast<long long>(n), static_cast<long long>(n), ms,
              peak);
  std::printf("BENCH name=gemm_bf16_8192 ms=%.4f tflops=%.2f\n", ms, peak);
}

}  // namespace

int run_benchmarks() {
  try {
    cudaDeviceProp prop{};
    int device = 0;
    LATTE_CUDA_CHECK(cudaGetDevice(&device));
    LATTE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    std::printf("device: %s (compute capability %d.%d, %d SMs)\n", prop.name, prop.major,
                prop.minor, prop.multiProcessorCount);
    bench_gemm_peak();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "latte_cuda_tests --bench: %s\n", e.what());
    return 1;
  }
}

}  // namespace latte::test

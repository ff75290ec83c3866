#include "cuda/bench.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cuda/flash_attention.cuh"
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

// The tile variants of the flash tensor-core kernels (kernels::cuda::flash_tile_variants), each
// against variant 0 (what problems run with), causal bf16 attention at B 4, H 16: the forward
// alone per forward variant, and the whole backward (delta, dk/dv, dq) per dk/dv variant and per
// dq variant with the other kernel at its default, at the head dims of each instantiation. FLOPs as
// in `latte bench attention`: forward 2·B·H·P·(qk+v) over the P = T(T+1)/2 causal pairs,
// backward 2.5x that. Per head dims, each variant's registers per thread and resident warps per
// SM (what occupancy it runs at); one line per shape and one "BENCH name=flash_tiles kernel=
// variant= qk= v= T= ms= tflops= of_default= registers= warps_per_sm=" line per timing.
void bench_flash_tiles() {
  namespace kc = kernels::cuda;
  const int64_t B = 4, H = 16;
  const kc::FlashTileVariants variants = kc::flash_tile_variants();
  // Each kernel: its name, its variants and the field of FlashTiles that picks one.
  const struct {
    const char* name;
    const std::vector<std::string>* names;
    int kc::FlashTiles::*pick;
  } kernels[] = {{"forward", &variants.forward, &kc::FlashTiles::forward},
                 {"dkdv", &variants.dkdv, &kc::FlashTiles::dkdv},
                 {"dq", &variants.dq, &kc::FlashTiles::dq}};
  std::printf("\nflash tile variants, bf16 causal B %lld H %lld: TFLOP/s (x variant 0)\n",
              static_cast<long long>(B), static_cast<long long>(H));
  for (const auto& [kernel, names, pick] : kernels)
    for (size_t i = 0; i < names->size(); ++i)
      std::printf("  %s %zu: %s\n", kernel, i, (*names)[i].c_str());
  std::vector<std::string> bench_lines;
  for (const auto& [qk, vd] :
       {std::pair<int64_t, int64_t>{64, 64}, {96, 64}, {128, 128}, {192, 128}}) {
    // What each variant's kernel leaves room for on an SM: registers per thread, warps per SM.
    const kc::FlashTileOccupancy occupancy = kc::flash_tile_occupancy(qk, vd);
    const std::vector<kc::FlashVariantOccupancy>* occupancy_of[] = {&occupancy.forward,
                                                                    &occupancy.dkdv, &occupancy.dq};
    std::printf("  d(%lld,%lld) registers / warps per SM:", static_cast<long long>(qk),
                static_cast<long long>(vd));
    for (size_t kernel = 0; kernel < std::size(kernels); ++kernel)
      for (size_t i = 0; i < occupancy_of[kernel]->size(); ++i)
        std::printf(" %s%zu %d/%d", kernels[kernel].name, i, (*occupancy_of[kernel])[i].registers,
                    (*occupancy_of[kernel])[i].warps_per_sm);
    std::printf("\n");
    for (const int64_t T : {int64_t{1024}, int64_t{4096}}) {
      kc::AttentionProblem p;
      p.batch = B, p.q_heads = H, p.kv_heads = H, p.q_len = T, p.kv_len = T;
      p.qk_dim = qk, p.v_dim = vd, p.causal = true;
      p.scale = 1.0 / std::sqrt(static_cast<double>(qk));
      p.q = p.k = kernels::cpu::packed_attention_layout(T, H, qk);
      p.v = p.o = kernels::cpu::packed_attention_layout(T, H, vd);
      const int64_t rows = B * T * H;
      DeviceBuffer<bf16> q(rows * qk), k(rows * qk), v(rows * vd), o(rows * vd), d_o(rows * vd),
          dq(rows * qk), dk(rows * qk), dv(rows * vd);
      for (DeviceBuffer<bf16>* buffer : {&q, &k, &v, &d_o}) fill_random(*buffer);
      DeviceBuffer<float> lse(B * H * T), workspace(kc::flash_attention_backward_workspace(p));
      const double forward_flops = 2.0 * B * H * (T * (T + 1) / 2.0) * (qk + vd);
      std::printf("  d(%lld,%lld) T %lld:", static_cast<long long>(qk), static_cast<long long>(vd),
                  static_cast<long long>(T));
      for (size_t kernel_index = 0; kernel_index < std::size(kernels); ++kernel_index) {
        const auto& [kernel, names, pick] = kernels[kernel_index];
        const bool forward = pick == &kc::FlashTiles::forward;
        double base = 0;
        for (int i = 0; i < static_cast<int>(names->size()); ++i) {
          kc::FlashTiles tiles;
          tiles.*pick = i;
          const double ms = time_ms([&] {
            if (forward)
              kc::flash_attention_forward<bf16>(p, q.get(), k.get(), v.get(), o.get(), lse.get(),
                                                cuda::stream(), tiles);
            else
              kc::flash_attention_backward<bf16>(p, q.get(), k.get(), v.get(), o.get(), d_o.get(),
                                                 lse.get(), dq.get(), dk.get(), dv.get(),
                                                 workspace.get(), cuda::stream(), tiles);
          });
          const double rate = tflops(forward ? forward_flops : 2.5 * forward_flops, ms);
          if (i == 0) base = rate;
          std::printf(" %s%d %.1f (x%.2f)", kernel, i, rate, rate / base);
          std::fflush(stdout);
          const kc::FlashVariantOccupancy& o = (*occupancy_of[kernel_index])[i];
          char line[240];
          std::snprintf(line, sizeof line,
                        "BENCH name=flash_tiles kernel=%s variant=%d qk=%lld v=%lld T=%lld ms=%.4f "
                        "tflops=%.2f of_default=%.3f registers=%d warps_per_sm=%d",
                        kernel, i, static_cast<long long>(qk), static_cast<long long>(vd),
                        static_cast<long long>(T), ms, rate, rate / base, o.registers,
                        o.warps_per_sm);
          bench_lines.push_back(line);
        }
      }
      std::printf("\n");
    }
  }
  for (const std::string& line : bench_lines) std::printf("%s\n", line.c_str());
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
    bench_flash_tiles();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "latte_cuda_tests --bench: %s\n", e.what());
    return 1;
  }
}

}  // namespace latte::test

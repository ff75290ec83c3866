#include "cuda/bench.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <random>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cuda/flash_attention.cuh"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/moe_dispatch.cuh"
#include "kernels/cuda/moe_routing.cuh"

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

// Fills a device buffer with Uniform(lo, hi) values by repeating a random host block.
template <typename T>
void fill_random(DeviceBuffer<T>& buffer, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(7);
  const size_t block = std::min<size_t>(buffer.size(), size_t(1) << 20);
  const std::vector<T> host = as_type<T>(uniform(rng, block, lo, hi));
  for (size_t at = 0; at < buffer.size(); at += block) {
    const size_t n = std::min(block, buffer.size() - at);
    LATTE_CUDA_CHECK(
        cudaMemcpy(buffer.get() + at, host.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
}

double tflops(double flops, double ms) {
  return flops / (ms * 1e-3) / 1e12;
}

// A cuBLAS bf16 GEMM (fp32 accumulation) of 8192^3: the practical tensor-core peak of this GPU.
double gemm_peak_tflops() {
  const int64_t n = 8192;
  DeviceBuffer<bf16> a(n * n), b(n * n), c(n * n);
  fill_random(a);
  fill_random(b);
  const double ms = time_ms([&] {
    kernels::cuda::gemm<bf16>(cuda::blas(), cuda::stream(), false, true, n, n, n, 1.f, a.get(), n,
                              b.get(), n, 0.f, c.get(), n);
  });
  const double peak = tflops(2.0 * n * n * n, ms);
  std::printf("cuBLAS bf16 GEMM %lldx%lldx%lld: %.3f ms, %.1f TFLOP/s (the peak below)\n",
              static_cast<long long>(n), static_cast<long long>(n), static_cast<long long>(n), ms,
              peak);
  std::printf("BENCH name=gemm_bf16_8192 ms=%.4f tflops=%.2f\n", ms, peak);
  return peak;
}

// Causal attention FLOPs: the two products q k^T and p v take 2 T^2 (d_qk + d_v) per (batch,
// head), half of it under the causal mask: forward = B H T^2 (d_qk + d_v), which is
// 4 B H T^2 d / 2 for d_qk = d_v = d. The backward pass counts as 2.5 forwards (five products
// instead of two, the FlashAttention-2 convention), so forward + backward = 3.5 forwards.
void bench_attention(double peak) {
  const int64_t batch = 4, heads = 16;
  const int64_t dims[][2] = {{64, 64}, {128, 128}, {192, 128}};
  std::printf("\nFlashAttention bf16, causal, B=%lld H=%lld (TFLOP/s; %% of the GEMM peak)\n",
              static_cast<long long>(batch), static_cast<long long>(heads));
  std::printf("%-12s %-6s %12s %10s %14s %10s\n", "d(qk,v)", "T", "fwd ms", "fwd TF/s",
              "fwd+bwd ms", "f+b TF/s");
  for (const auto& d : dims) {
    for (int64_t t : {1024, 4096, 8192}) {
      kernels::cpu::AttentionProblem p;
      p.batch = batch, p.q_heads = heads, p.kv_heads = heads, p.q_len = t, p.kv_len = t;
      p.qk_dim = d[0], p.v_dim = d[1], p.causal = true;
      p.scale = 1.0 / std::sqrt(static_cast<double>(d[0]));
      p.q = p.k = kernels::cpu::packed_attention_layout(t, heads, d[0]);
      p.v = p.o = kernels::cpu::packed_attention_layout(t, heads, d[1]);
      const int64_t nqk = batch * t * heads * d[0], nv = batch * t * heads * d[1];
      DeviceBuffer<bf16> q(nqk), k(nqk), v(nv), o(nv), d_o(nv), dq(nqk), dk(nqk), dv(nv);
      DeviceBuffer<float> lse(batch * heads * t),
          workspace(kernels::cuda::flash_attention_backward_workspace(p));
      fill_random(q), fill_random(k), fill_random(v), fill_random(d_o);
      const cudaStream_t s = cuda::stream();
      auto forward = [&] {
        kernels::cuda::flash_attention_forward<bf16>(p, q.get(), k.get(), v.get(), o.get(),
                                                     lse.get(), s);
      };
      const double fwd = time_ms(forward);
      const double both = time_ms([&] {
        forward();
        kernels::cuda::flash_attention_backward<bf16>(p, q.get(), k.get(), v.get(), o.get(),
                                                      d_o.get(), lse.get(), dq.get(), dk.get(),
                                                      dv.get(), workspace.get(), s);
      });
      const double flops = static_cast<double>(batch * heads) * t * t * (d[0] + d[1]);
      const double tf_fwd = tflops(flops, fwd), tf_both = tflops(3.5 * flops, both);
      std::printf("(%3lld,%3lld)    %-6lld %12.3f %6.1f %3.0f%% %14.3f %6.1f %3.0f%%\n",
                  static_cast<long long>(d[0]), static_cast<long long>(d[1]),
                  static_cast<long long>(t), fwd, tf_fwd, 100 * tf_fwd / peak, both, tf_both,
                  100 * tf_both / peak);
      std::printf(
          "BENCH name=flash_fwd qk=%lld v=%lld T=%lld ms=%.4f tflops=%.2f\n"
          "BENCH name=flash_fwd_bwd qk=%lld v=%lld T=%lld ms=%.4f tflops=%.2f\n",
          static_cast<long long>(d[0]), static_cast<long long>(d[1]), static_cast<long long>(t),
          fwd, tf_fwd, static_cast<long long>(d[0]), static_cast<long long>(d[1]),
          static_cast<long long>(t), both, tf_both);
    }
  }
}

// One MoE layer's forward on bf16 activations: router (fp32 scores, noaux_tc selection), the
// dispatch permutation and gather, the combine, against the three expert GEMMs (gate, up, down;
// the host reads the E + 1 expert offsets once, a sync the GEMM time includes).
void bench_moe() {
  const int64_t n = 16384, e = 64, k = 6, d_model = 2048, d_ff = 1408;
  kernels::cpu::RouterSpec spec;
  spec.n_experts = e, spec.top_k = k, spec.method = kernels::cpu::RouterTopkMethod::kNoauxTc;
  spec.n_group = 8, spec.topk_group = 4, spec.norm_topk_prob = true;
  const cudaStream_t s = cuda::stream();
  DeviceBuffer<float> logits(n * e), scores(n * e), bias(e), weights(n * k);
  DeviceBuffer<int32_t> ids(n * k);
  DeviceBuffer<int64_t> offsets(e + 1), sorted(n * k), position(n * k), status(2);
  DeviceBuffer<char> workspace(kernels::cuda::build_dispatch_workspace_bytes(n * k, e));
  DeviceBuffer<bf16> x(n * d_model), xs(n * k * d_model), h_gate(n * k * d_ff), h_up(n * k * d_ff),
      out(n * k * d_model), y(n * d_model);
  DeviceBuffer<bf16> w_gate(e * d_ff * d_model), w_up(e * d_ff * d_model),
      w_down(e * d_model * d_ff);
  fill_random(logits, -3.f, 3.f), fill_random(bias, -0.1f, 0.1f), fill_random(x);
  fill_random(w_gate), fill_random(w_up), fill_random(w_down);

  const double route = time_ms([&] {
    kernels::cuda::router_scores_forward(logits.get(), n, e, kernels::cpu::RouterScoring::kSigmoid,
                                         scores.get(), s);
    kernels::cuda::select_experts(scores.get(), bias.get(), n, spec, ids.get(), weights.get(), s);
  });
  const double permute = time_ms([&] {
    kernels::cuda::build_dispatch(ids.get(), n, k, e, kernels::cpu::kDroplessCapacity,
                                  offsets.get(), sorted.get(), position.get(), status.get(),
                                  workspace.get(), s);
    kernels::cuda::gather_rows<bf16>(x.get(), sorted.get(), offsets.get() + e, n * k, k, d_model,
                                     xs.get(), s);
  });
  std::vector<int64_t> host_offsets(e + 1);
  const double gemms = time_ms([&] {
    LATTE_CUDA_CHECK(cudaMemcpyAsync(host_offsets.data(), offsets.get(), (e + 1) * sizeof(int64_t),
                                     cudaMemcpyDeviceToHost, s));
    LATTE_CUDA_CHECK(cudaStreamSynchronize(s));
    const auto& blas = cuda::blas();
    kernels::cuda::grouped_gemm<bf16>(blas, s, true, host_offsets.data(), e, d_ff, d_model, 1.f,
                                      xs.get(), d_model, w_gate.get(), d_model, d_ff * d_model, 0.f,
                                      h_gate.get(), d_ff);
    kernels::cuda::grouped_gemm<bf16>(blas, s, true, host_offsets.data(), e, d_ff, d_model, 1.f,
                                      xs.get(), d_model, w_up.get(), d_model, d_ff * d_model, 0.f,
                                      h_up.get(), d_ff);
    kernels::cuda::grouped_gemm<bf16>(blas, s, true, host_offsets.data(), e, d_model, d_ff, 1.f,
                                      h_gate.get(), d_ff, w_down.get(), d_ff, d_model * d_ff, 0.f,
                                      out.get(), d_model);
  });
  const double combine = time_ms([&] {
    kernels::cuda::combine_forward<bf16>(out.get(), weights.get(), position.get(), n, k, d_model,
                                         y.get(), s);
  });
  const double gemm_flops = 2.0 * n * k * d_model * d_ff * 3;
  const double overhead = route + permute + combine;
  std::printf("\nMoE forward, bf16: N=%lld tokens, E=%lld, top-%lld, d_model=%lld, d_ff=%lld\n",
              static_cast<long long>(n), static_cast<long long>(e), static_cast<long long>(k),
              static_cast<long long>(d_model), static_cast<long long>(d_ff));
  std::printf("  routing (scores + noaux_tc top-k)   %8.3f ms\n", route);
  std::printf("  permutation (sort + gather)         %8.3f ms\n", permute);
  std::printf("  combine                             %8.3f ms\n", combine);
  std::printf("  expert GEMMs (gate, up, down)       %8.3f ms  %.1f TFLOP/s\n", gemms,
              tflops(gemm_flops, gemms));
  std::printf("  routing + permutation + combine = %.1f%% of the expert GEMM time\n",
              100 * overhead / gemms);
  std::printf(
      "BENCH name=moe_routing ms=%.4f\nBENCH name=moe_permutation ms=%.4f\n"
      "BENCH name=moe_combine ms=%.4f\nBENCH name=moe_expert_gemms ms=%.4f tflops=%.2f\n",
      route, permute, combine, gemms, tflops(gemm_flops, gemms));
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
    const double peak = gemm_peak_tflops();
    bench_attention(peak);
    bench_moe();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "latte_cuda_tests --bench: %s\n", e.what());
    return 1;
  }
}

}  // namespace latte::test

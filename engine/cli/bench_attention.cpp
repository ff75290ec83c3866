// Benchmark: the core of one attention layer, softmax(scale · q kᵀ, causal) v, through
// ops::attention: the naive kernel (materializes the [B, H, T, T] probabilities) against the flash
// kernel (keeps a [B, H, T] logsumexp and recomputes the scores in backward), forward alone and
// forward+backward through autograd, with time, FLOP/s and peak tensor memory (the device's
// allocator) per kernel.
// cpu: f32 at B 1, H 8, qk = v = 64 and T = 256, 1024, 4096 (--quick: 32, 128, 512), with the
// flash/naive ratios per T and how peak memory grows from one T to the next.
// cuda: bf16 at B 4, H 16, T = 1024, 4096, 8192 (--quick: 256, 1024) and head dims (qk, v) =
// (64, 64), (128, 128), (192, 128), in TFLOP/s and % of --peak-tflops, with one
// "BENCH name=flash_fwd|flash_fwd_bwd|naive_fwd|naive_fwd_bwd qk= v= T= ms= tflops= peak_mib="
// line per measurement for tools/gpu_check.sh (naive is reported as failed where memory does not
// allow it).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/cli/bench.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace latte::cli {

namespace {

struct Measurement {
  Timing time;
  double peak_bytes = 0;
};

// Bytes the device's allocator reached during fn above what it held before.
double peak_bytes_during(Device device, const std::function<void()>& fn) {
  Allocator& allocator = allocator_for(device);
  allocator.reset_peak();
  const size_t before = allocator.current_bytes();
  fn();
  return static_cast<double>(allocator.peak_bytes() - before);
}

constexpr double kMiB = 1024.0 * 1024.0;

// fwd+bwd counts 3.5x the forward for both kernels: flash's backward recomputes q kᵀ and does 5
// matmuls against the forward's 2 (naive's does 4), so equal counts make FLOP/s an inverse time.
constexpr double kBackwardFactor = 2.5;
const char* const kPassNames[2] = {"fwd", "fwd+bwd"};

// The FLOPs of the two passes at one shape: fwd = 2·B·H·P·(qk+v) over the P = T(T+1)/2 causal
// (query, key) pairs, fwd+bwd = (1 + kBackwardFactor) x fwd.
std::array<double, 2> pass_flops(int64_t B, int64_t H, int64_t T, int64_t qk, int64_t vd) {
  const double pairs = static_cast<double>(T) * static_cast<double>(T + 1) / 2;
  const double forward = 2.0 * B * H * pairs * (qk + vd);
  return {forward, forward * (1.0 + kBackwardFactor)};
}

void print_pass_conventions(const char* extra) {
  std::printf(
      "passes: fwd with grad recording off; fwd+bwd through autograd (run_backward with a seed "
      "dO)\nFLOPs: fwd = 2·B·H·P·(qk+v), P = T(T+1)/2 causal (query, key) pairs; fwd+bwd = %.1f "
      "x fwd for both kernels%s\n",
      1.0 + kBackwardFactor, extra);
}

// The inputs of one shape (q, k, v requiring gradients; dO) and the two timed passes over them.
struct AttentionInputs {
  Tensor q, k, v, d_o;

  AttentionInputs(int64_t B, int64_t T, int64_t H, int64_t qk, int64_t vd, uint64_t seed,
                  DType dtype, Device device) {
    Generator gen(seed);
    q = randn({B, T, H, qk}, gen, 0.0, 1.0, dtype, device);
    k = randn({B, T, H, qk}, gen, 0.0, 1.0, dtype, device);
    v = randn({B, T, H, vd}, gen, 0.0, 1.0, dtype, device);
    d_o = randn({B, T, H, vd}, gen, 0.0, 1.0, dtype, device);
    for (Tensor* t : {&q, &k, &v}) t->set_requires_grad(true);
  }

  void zero_grads() {
    for (Tensor* t : {&q, &k, &v}) t->zero_grad();
  }

  // Pass 0: forward without recording; pass 1: forward and backward.
  std::function<void()> pass(int index, double scale, ops::AttentionKernel kernel) {
    if (index == 0)
      return [this, scale, kernel] {
        NoGradGuard no_grad;
        Tensor o = ops::attention(q, k, v, scale, true, kernel);
      };
    return [this, scale, kernel] {
      Tensor o = ops::attention(q, k, v, scale, true, kernel);
      run_backward(o, d_o);
    };
  }
};

void bench_attention_cpu(const BenchOptions& options) {
  const int64_t B = 1, H = 8, qk = 64, vd = 64;
  const std::vector<int64_t> lengths =
      options.quick ? std::vector<int64_t>{32, 128, 512} : std::vector<int64_t>{256, 1024, 4096};
  const double scale = 1.0 / std::sqrt(static_cast<double>(qk));
  std::printf("shape: B %lld, H %lld, qk %lld, v %lld, T %lld / %lld / %lld, causal, f32, cpu\n",
              static_cast<long long>(B), static_cast<long long>(H), static_cast<long long>(qk),
              static_cast<long long>(vd), static_cast<long long>(lengths[0]),
              static_cast<long long>(lengths[1]), static_cast<long long>(lengths[2]));
  print_pass_conventions("");
  std::printf(
      "peak: highest CPU-allocator bytes during one call above those held before it (the inputs "
      "q, k, v, dO): output, saved probabilities (naive) or logsumexp (flash), gradients and "
      "autograd's leaf-gradient copies; naive's backward also holds a T x T scratch per thread "
      "outside the allocator\n\n");

  const ops::AttentionKernel kernels[2] = {ops::AttentionKernel::kNaive,
                                           ops::AttentionKernel::kFlash};
  const char* kernel_names[2] = {"naive", "flash"};
  // results[length][kernel][pass]
  std::vector<std::vector<std::vector<Measurement>>> results(
      lengths.size(), std::vector<std::vector<Measurement>>(2, std::vector<Measurement>(2)));

  std::printf("%6s  %-6s %-8s %10s %10s %9s %10s\n", "T", "kernel", "pass", "best ms", "median ms",
              "GFLOP/s", "peak MiB");
  for (size_t li = 0; li < lengths.size(); ++li) {
    const int64_t T = lengths[li];
    AttentionInputs in(B, T, H, qk, vd, static_cast<uint64_t>(T), DType::F32, Device::CPU);
    const std::array<double, 2> flops = pass_flops(B, H, T, qk, vd);
    for (int ki = 0; ki < 2; ++ki) {
      for (int pi = 0; pi < 2; ++pi) {
        const std::function<void()> pass = in.pass(pi, scale, kernels[ki]);
        Measurement& m = results[li][ki][pi];
        m.time = time_it(
            [&] {
              in.zero_grads();
              pass();
            },
            options.repeats);
        in.zero_grads();
        m.peak_bytes = peak_bytes_during(Device::CPU, pass);
        in.zero_grads();
        std::printf("%6lld  %-6s %-8s %10.2f %10.2f %9.1f %10.2f\n", static_cast<long long>(T),
                    kernel_names[ki], kPassNames[pi], m.time.best_s * 1e3, m.time.median_s * 1e3,
                    flops[pi] / m.time.best_s * 1e-9, m.peak_bytes / kMiB);
        std::fflush(stdout);
      }
    }
  }

  std::printf("\nflash / naive (best time; peak memory)\n");
  std::printf("%6s %12s %12s %12s %12s\n", "T", "time fwd", "time f+b", "peak fwd", "peak f+b");
  for (size_t li = 0; li < lengths.size(); ++li) {
    const auto& naive = results[li][0];
    const auto& flash = results[li][1];
    std::printf(
        "%6lld %12.3f %12.3f %12.4f %12.4f\n", static_cast<long long>(lengths[li]),
        flash[0].time.best_s / naive[0].time.best_s, flash[1].time.best_s / naive[1].time.best_s,
        flash[0].peak_bytes / naive[0].peak_bytes, flash[1].peak_bytes / naive[1].peak_bytes);
  }

  std::printf("\npeak memory growth between consecutive T (linear in T: x%lld, quadratic: x%lld)\n",
              static_cast<long long>(lengths[1] / lengths[0]),
              static_cast<long long>((lengths[1] / lengths[0]) * (lengths[1] / lengths[0])));
  std::printf("%14s %12s %12s %12s %12s\n", "T", "flash fwd", "flash f+b", "naive fwd",
              "naive f+b");
  for (size_t li = 1; li < lengths.size(); ++li) {
    auto growth = [&](int ki, int pi) {
      return results[li][ki][pi].peak_bytes / results[li - 1][ki][pi].peak_bytes;
    };
    char span[32];
    std::snprintf(span, sizeof span, "%lld -> %lld", static_cast<long long>(lengths[li - 1]),
                  static_cast<long long>(lengths[li]));
    std::printf("%14s %11.2fx %11.2fx %11.2fx %11.2fx\n", span, growth(1, 0), growth(1, 1),
                growth(0, 0), growth(0, 1));
  }
}

void bench_attention_cuda(const BenchOptions& options) {
  const int64_t B = 4, H = 16;
  const int64_t head_dims[3][2] = {{64, 64}, {128, 128}, {192, 128}};
  const std::vector<int64_t> lengths =
      options.quick ? std::vector<int64_t>{256, 1024} : std::vector<int64_t>{1024, 4096, 8192};
  Allocator& allocator = allocator_for(Device::CUDA);
  std::string lengths_text;
  for (int64_t T : lengths) lengths_text += (lengths_text.empty() ? "" : " / ") + std::to_string(T);
  std::printf(
      "shape: B %lld, H %lld, T %s, head dims (qk, v) (64, 64) / (128, 128) / (192, 128), causal, "
      "bf16 (fp32 accumulation and logsumexp), cuda\n",
      static_cast<long long>(B), static_cast<long long>(H), lengths_text.c_str());
  char peak_text[96];
  std::snprintf(peak_text, sizeof peak_text,
                "; TFLOP/s from the best time, %% of --peak-tflops %.1f", options.peak_tflops);
  print_pass_conventions(peak_text);
  std::printf(
      "time: each of %d timings is the mean of back-to-back calls filling >= %.0f ms between two "
      "waits for the GPU; best and median reported\n",
      std::max(options.repeats, 1), kDeviceBatchSeconds * 1e3);
  std::printf(
      "peak: highest CUDA-allocator bytes during one call above those held before it (the inputs "
      "q, k, v, dO): output, saved probabilities (naive) or logsumexp (flash), backward "
      "workspaces, gradients and autograd's leaf-gradient copies\n\n");

  const ops::AttentionKernel kernels[2] = {ops::AttentionKernel::kFlash,
                                           ops::AttentionKernel::kNaive};
  const char* kernel_names[2] = {"flash", "naive"};
  const char* bench_names[2][2] = {{"flash_fwd", "flash_fwd_bwd"}, {"naive_fwd", "naive_fwd_bwd"}};
  std::printf("%-10s %6s  %-6s %-8s %10s %10s %9s %7s %10s\n", "d(qk,v)", "T", "kernel", "pass",
              "best ms", "median ms", "TFLOP/s", "% peak", "peak MiB");
  for (const auto& dims : head_dims) {
    const int64_t qk = dims[0], vd = dims[1];
    char dims_text[32];
    std::snprintf(dims_text, sizeof dims_text, "(%lld,%lld)", static_cast<long long>(qk),
                  static_cast<long long>(vd));
    const double scale = 1.0 / std::sqrt(static_cast<double>(qk));
    for (const int64_t T : lengths) {
      // The previous shape's cached blocks go back to the device before this one allocates.
      allocator.release_cached();
      AttentionInputs in(B, T, H, qk, vd, static_cast<uint64_t>(T * 1000 + qk), DType::BF16,
                         Device::CUDA);
      const std::array<double, 2> flops = pass_flops(B, H, T, qk, vd);
      for (int ki = 0; ki < 2; ++ki) {
        const ops::AttentionKernel kernel = kernels[ki];
        for (int pi = 0; pi < 2; ++pi) {
          const std::function<void()> pass = in.pass(pi, scale, kernel);
          Measurement m;
          try {
            m.time = time_on_device(
                [&] {
                  in.zero_grads();
                  pass();
                },
                options.repeats, Device::CUDA);
            in.zero_grads();
            m.peak_bytes = peak_bytes_during(Device::CUDA, pass);
            in.zero_grads();
          } catch (const Error& e) {
            // The naive kernel's [B, H, T, T] probabilities may not fit the GPU: reported, not
            // fatal. Flash has no such excuse.
            if (kernel == ops::AttentionKernel::kFlash) throw;
            in.zero_grads();
            allocator.release_cached();
            std::printf("%-10s %6lld  %-6s %-8s not run: %s\n", dims_text,
                        static_cast<long long>(T), kernel_names[ki], kPassNames[pi], e.what());
            std::printf("BENCH name=%s qk=%lld v=%lld T=%lld error=1\n", bench_names[ki][pi],
                        static_cast<long long>(qk), static_cast<long long>(vd),
                        static_cast<long long>(T));
            std::fflush(stdout);
            continue;
          }
          const double tflops = flops[pi] / m.time.best_s * 1e-12;
          std::printf("%-10s %6lld  %-6s %-8s %10.3f %10.3f %9.1f %6.1f%% %10.1f\n", dims_text,
                      static_cast<long long>(T), kernel_names[ki], kPassNames[pi],
                      m.time.best_s * 1e3, m.time.median_s * 1e3, tflops,
                      100.0 * tflops / options.peak_tflops, m.peak_bytes / kMiB);
          std::printf(
              "BENCH name=%s qk=%lld v=%lld T=%lld ms=%.4f tflops=%.2f median_ms=%.4f "
              "peak_mib=%.1f\n",
              bench_names[ki][pi], static_cast<long long>(qk), static_cast<long long>(vd),
              static_cast<long long>(T), m.time.best_s * 1e3, tflops, m.time.median_s * 1e3,
              m.peak_bytes / kMiB);
          std::fflush(stdout);
        }
      }
    }
  }
  allocator.release_cached();
}

}  // namespace

void bench_attention(const BenchOptions& options) {
  if (bench_device("attention", options) == Device::CUDA)
    bench_attention_cuda(options);
  else
    bench_attention_cpu(options);
}

}  // namespace latte::cli

// Benchmark: the linear op's forward+backward (three GEMMs through autograd) against the same
// three cblas_sgemm calls made directly, at (M, K, N) = (4096, 512, 2048) in f32.
#include <cblas.h>

#include <cstdio>

#include "engine/autograd.h"
#include "engine/cli/bench.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace latte::cli {

void bench_linear(const BenchOptions& options) {
  LATTE_CHECK(options.device == "cpu") << "bench linear: only --device cpu is implemented";
  const int64_t M = options.quick ? 512 : 4096, K = 512, N = 2048;
  Generator gen(1);
  Tensor x = randn({M, K}, gen), w = randn({N, K}, gen, 0, 0.02), dy = randn({M, N}, gen);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  const double flops = 3.0 * 2.0 * M * K * N;

  const Timing op = time_it(
      [&] {
        x.zero_grad();
        w.zero_grad();
        Tensor y = ops::linear(x, w);
        run_backward(y, dy);
      },
      options.repeats);

  Tensor y = Tensor::empty({M, N}), dx = Tensor::empty({M, K}), dw = Tensor::empty({N, K});
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  const float* pdy = dy.data<float>();
  const Timing raw = time_it(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.f, px, K, pw, K, 0.f,
                    y.data<float>(), N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1.f, pdy, N, pw, K, 0.f,
                    dx.data<float>(), K);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1.f, pdy, N, px, K, 0.f,
                    dw.data<float>(), K);
      },
      options.repeats);

  std::printf("%-28s %10s %10s\n", "", "best ms", "GFLOP/s");
  std::printf("%-28s %10.2f %10.1f\n", "raw cblas_sgemm x3", raw.best_s * 1e3,
              flops / raw.best_s * 1e-9);
  std::printf("%-28s %10.2f %10.1f\n", "ops::linear fwd+bwd", op.best_s * 1e3,
              flops / op.best_s * 1e-9);
  std::printf("linear / raw BLAS throughput: %.1f%% (M=%lld K=%lld N=%lld)\n",
              100.0 * raw.best_s / op.best_s, static_cast<long long>(M), static_cast<long long>(K),
              static_cast<long long>(N));
}

}  // namespace latte::cli

// The CUDA table of the matrix products, over kernels/cuda/gemm.cuh (cuBLAS; the bias of linear
// is a cuBLASLt epilogue, so the output is written once).
#include "engine/backend/linear_kernels.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_runtime.h"
#include "engine/dispatch.h"

namespace latte::cuda {

namespace {

namespace kc = kernels::cuda;

class CudaLinearKernels final : public LinearKernels {
 public:
  void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
            double alpha, const MatrixStack& a, const MatrixStack& b, double beta,
            const MatrixStack& c) const override {
    visit_gpu_float_pair(
        a.tensor.dtype(), c.tensor.dtype(), "gemm", [&](auto operand, auto result) {
          using T = decltype(operand);
          using C = decltype(result);
          kc::gemm_batched<T, C>(blas(), stream(), trans_a, trans_b, batch, m, n, k,
                                 static_cast<float>(alpha), a.data<T>(), a.ld, a.batch_stride,
                                 b.data<T>(), b.ld, b.batch_stride, static_cast<float>(beta),
                                 c.data<C>(), c.ld, c.batch_stride);
        });
  }

  void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias,
                      const Tensor& y) const override {
    const int64_t in = w.size(1), out = w.size(0), rows = x.numel() / in;
    visit_gpu_float(x.dtype(), "linear", [&](auto tag) {
      using T = decltype(tag);
      if (bias.defined())
        kc::gemm_bias<T>(blas(), stream(), false, true, rows, out, in, x.data<T>(), in, w.data<T>(),
                         in, bias.data<T>(), y.data<T>(), out);
      else
        kc::gemm<T>(blas(), stream(), false, true, rows, out, in, 1.0f, x.data<T>(), in,
                    w.data<T>(), in, 0.0f, y.data<T>(), out);
    });
  }
};

}  // namespace

const LinearKernels& linear_kernels() {
  static const CudaLinearKernels table;
  return table;
}

}  // namespace latte::cuda

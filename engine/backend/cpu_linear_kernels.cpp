// The CPU table of the matrix products, over kernels/cpu/gemm.h (CBLAS).
#include <algorithm>

#include "engine/backend/linear_kernels.h"
#include "engine/dispatch.h"
#include "kernels/cpu/gemm.h"

namespace latte {

namespace {

namespace k = kernels::cpu;

class CpuLinearKernels final : public LinearKernels {
 public:
  void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
            double alpha, const MatrixStack& a, const MatrixStack& b, double beta,
            const MatrixStack& c) const override {
    visit_float_pair(a.tensor.dtype(), c.tensor.dtype(), "gemm", [&](auto operand, auto result) {
      using T = decltype(operand);
      using C = decltype(result);
      k::gemm_batched(trans_a, trans_b, batch, m, n, k, static_cast<T>(alpha), a.data<T>(), a.ld,
                      a.batch_stride, b.data<T>(), b.ld, b.batch_stride, static_cast<C>(beta),
                      c.data<C>(), c.ld, c.batch_stride);
    });
  }

  // The bias is fused by starting C from it (beta = 1).
  void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias,
                      const Tensor& y) const override {
    const int64_t in = w.size(1), out = w.size(0), rows = x.numel() / in;
    visit_float(x.dtype(), "linear", [&](auto tag) {
      using T = decltype(tag);
      T beta = T(0);
      if (bias.defined()) {
        T* py = y.data<T>();
        for (int64_t r = 0; r < rows; ++r) std::copy_n(bias.data<T>(), out, py + r * out);
        beta = T(1);
      }
      k::gemm<T>(false, true, rows, out, in, T(1), x.data<T>(), in, w.data<T>(), in, beta,
                 y.data<T>(), out);
    });
  }
};

}  // namespace

const LinearKernels& cpu_linear_kernels() {
  static const CpuLinearKernels table;
  return table;
}

}  // namespace latte

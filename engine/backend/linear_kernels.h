// Kernel table of the matrix products (engine/ops/linear_ops.cpp): row-major GEMMs over stacks
// of matrices that live inside tensors (views are passed with leading dimensions and batch
// strides, never copied), and the fused linear forward.
#pragma once

#include <cstdint>

#include "engine/backend/backend.h"
#include "engine/tensor.h"

namespace latte {

// A stack of row-major matrices in a tensor's memory: matrix i starts `offset + i·batch_stride`
// elements after tensor.data() (batch_stride 0: one matrix shared by the whole stack); rows are
// `ld` elements apart.
struct MatrixStack {
  Tensor tensor;
  int64_t offset = 0;
  int64_t ld = 0;
  int64_t batch_stride = 0;

  // The first matrix's first element.
  template <typename T>
  T* data() const {
    return tensor.data<T>() + offset;
  }
};

class LinearKernels {
 public:
  virtual ~LinearKernels() = default;

  // c_i = alpha · op(a_i) · op(b_i) + beta · c_i for i < batch; op(a_i) is [m, k], op(b_i) is
  // [k, n], c_i is [m, n]; op transposes when the flag is set. a and b share a dtype; c has it
  // too, or its master dtype (the weight gradients of mixed precision).
  virtual void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                    double alpha, const MatrixStack& a, const MatrixStack& b, double beta,
                    const MatrixStack& c) const = 0;

  // y [rows, out] = x [rows, in] · wᵀ (w [out, in]) + bias [out] (bias may be undefined); all
  // contiguous.
  virtual void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias,
                              const Tensor& y) const = 0;
};

inline const LinearKernels& linear_kernels(Device device) {
  return checked_table(backend_for(device).linear, device, "linear");
}

}  // namespace latte

// Kernel table of the elementwise ops and reductions (engine/ops/elementwise_ops.cpp). Inputs
// and outputs are contiguous unless a stride array says otherwise; all tensors share the table's
// device and one floating dtype.
#pragma once

#include "engine/backend/backend.h"
#include "engine/tensor.h"
#include "kernels/cpu/elementwise.h"

namespace latte {

using kernels::cpu::BinaryOp;

class ElementwiseKernels {
 public:
  virtual ~ElementwiseKernels() = default;

  // out = a (op) b over `shape` (out contiguous); a and b are read through their strides for
  // `shape` (0 in broadcast dimensions).
  virtual void binary(BinaryOp op, const Shape& shape, const Tensor& a, const Shape& a_strides,
                      const Tensor& b, const Shape& b_strides, const Tensor& out) const = 0;
  virtual void scale(const Tensor& x, double s, const Tensor& out) const = 0;
  // dst += src.
  virtual void add_inplace(const Tensor& dst, const Tensor& src) const = 0;

  virtual void silu_forward(const Tensor& x, const Tensor& y) const = 0;
  virtual void silu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) const = 0;
  virtual void sigmoid_forward(const Tensor& x, const Tensor& y) const = 0;
  virtual void sigmoid_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) const = 0;
  virtual void swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& y) const = 0;
  virtual void swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dy,
                               const Tensor& dgate, const Tensor& dup) const = 0;

  // out (0-dim) = the sum of every element of x.
  virtual void sum_all(const Tensor& x, const Tensor& out) const = 0;
  // out = x summed over the dimensions of `full` (x's shape) where out_strides is 0; out_strides
  // are out's strides for `full`.
  virtual void sum_to(const Tensor& x, const Shape& full, const Tensor& out,
                      const Shape& out_strides) const = 0;
};

inline const ElementwiseKernels& elementwise_kernels(Device device) {
  return checked_table(backend_for(device).elementwise, device, "elementwise");
}

}  // namespace latte

// The CPU table of the elementwise ops and reductions, over kernels/cpu/elementwise.h.
#include "engine/backend/elementwise_kernels.h"
#include "engine/dispatch.h"

namespace latte {

namespace {

namespace k = kernels::cpu;

class CpuElementwiseKernels final : public ElementwiseKernels {
 public:
  void binary(BinaryOp op, const Shape& shape, const Tensor& a, const Shape& a_strides,
              const Tensor& b, const Shape& b_strides, const Tensor& out) const override {
    visit_float(out.dtype(), "binary op", [&](auto tag) {
      using T = decltype(tag);
      k::binary_op<T>(op, shape.begin(), shape.size(), a.data<T>(), a_strides.begin(), b.data<T>(),
                      b_strides.begin(), out.data<T>());
    });
  }

  void scale(const Tensor& x, double s, const Tensor& out) const override {
    visit_float(x.dtype(), "scale", [&](auto tag) {
      using T = decltype(tag);
      k::scale<T>(x.data<T>(), out.data<T>(), x.numel(), static_cast<T>(s));
    });
  }

  void add_inplace(const Tensor& dst, const Tensor& src) const override {
    visit_float(dst.dtype(), "add_", [&](auto tag) {
      using T = decltype(tag);
      k::add_inplace(dst.data<T>(), src.data<T>(), dst.numel());
    });
  }

  void silu_forward(const Tensor& x, const Tensor& y) const override {
    visit_float(x.dtype(), "silu", [&](auto tag) {
      using T = decltype(tag);
      k::silu_forward(x.data<T>(), y.data<T>(), x.numel());
    });
  }

  void silu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) const override {
    visit_float(x.dtype(), "silu backward", [&](auto tag) {
      using T = decltype(tag);
      k::silu_backward(x.data<T>(), dy.data<T>(), dx.data<T>(), x.numel());
    });
  }

  void sigmoid_forward(const Tensor& x, const Tensor& y) const override {
    visit_float(x.dtype(), "sigmoid", [&](auto tag) {
      using T = decltype(tag);
      k::sigmoid_forward(x.data<T>(), y.data<T>(), x.numel());
    });
  }

  void sigmoid_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) const override {
    visit_float(y.dtype(), "sigmoid backward", [&](auto tag) {
      using T = decltype(tag);
      k::sigmoid_backward(y.data<T>(), dy.data<T>(), dx.data<T>(), y.numel());
    });
  }

  void swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& y) const override {
    visit_float(gate.dtype(), "swiglu", [&](auto tag) {
      using T = decltype(tag);
      k::swiglu_forward(gate.data<T>(), up.data<T>(), y.data<T>(), y.numel());
    });
  }

  void swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dy, const Tensor& dgate,
                       const Tensor& dup) const override {
    visit_float(gate.dtype(), "swiglu backward", [&](auto tag) {
      using T = decltype(tag);
      k::swiglu_backward(gate.data<T>(), up.data<T>(), dy.data<T>(), dgate.data<T>(), dup.data<T>(),
                         gate.numel());
    });
  }

  void sum_all(const Tensor& x, const Tensor& out) const override {
    visit_float(x.dtype(), "sum", [&](auto tag) {
      using T = decltype(tag);
      *out.data<T>() = static_cast<T>(k::sum_all(x.data<T>(), x.numel()));
    });
  }

  void sum_to(const Tensor& x, const Shape& full, const Tensor& out,
              const Shape& out_strides) const override {
    visit_float(x.dtype(), "sum_to", [&](auto tag) {
      using T = decltype(tag);
      k::sum_to(x.data<T>(), full.begin(), full.size(), out.data<T>(), out_strides.begin(),
                out.numel());
    });
  }
};

}  // namespace

const ElementwiseKernels& cpu_elementwise_kernels() {
  static const CpuElementwiseKernels table;
  return table;
}

}  // namespace latte

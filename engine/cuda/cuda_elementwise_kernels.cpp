// The CUDA table of the elementwise ops and reductions, over kernels/cuda/elementwise.cuh and
// kernels/cuda/activations.cuh (f32 and bf16 tensors). Sums write their result on the device;
// their workspace comes from the caching allocator.
#include "engine/backend/elementwise_kernels.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_runtime.h"
#include "engine/dispatch.h"
#include "kernels/cuda/activations.cuh"
#include "kernels/cuda/elementwise.cuh"

namespace latte::cuda {

namespace {

namespace kc = kernels::cuda;

// A device buffer of n doubles (undefined when n is 0), freed to the caching allocator when the
// handle goes: later work on the stream is ordered after the kernels that use it.
Tensor workspace(int64_t n) {
  return n > 0 ? Tensor::empty(Shape{n}, DType::F64, Device::CUDA) : Tensor();
}

double* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<double>() : nullptr;
}

class CudaElementwiseKernels final : public ElementwiseKernels {
 public:
  void binary(BinaryOp op, const Shape& shape, const Tensor& a, const Shape& a_strides,
              const Tensor& b, const Shape& b_strides, const Tensor& out) const override {
    visit_gpu_float(out.dtype(), "binary op", [&](auto tag) {
      using T = decltype(tag);
      kc::binary_op<T>(op, shape.begin(), shape.size(), a.data<T>(), a_strides.begin(), b.data<T>(),
                       b_strides.begin(), out.data<T>(), stream());
    });
  }

  void scale(const Tensor& x, double s, const Tensor& out) const override {
    visit_gpu_float(x.dtype(), "scale", [&](auto tag) {
      using T = decltype(tag);
      kc::scale<T>(x.data<T>(), out.data<T>(), x.numel(), static_cast<float>(s), stream());
    });
  }

  void add_inplace(const Tensor& dst, const Tensor& src) const override {
    visit_gpu_float(dst.dtype(), "add_", [&](auto tag) {
      using T = decltype(tag);
      kc::add_inplace<T>(dst.data<T>(), src.data<T>(), dst.numel(), stream());
    });
  }

  void silu_forward(const Tensor& x, const Tensor& y) const override {
    visit_gpu_float(x.dtype(), "silu", [&](auto tag) {
      using T = decltype(tag);
      kc::silu_forward<T>(x.data<T>(), y.data<T>(), x.numel(), stream());
    });
  }

  void silu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) const override {
    visit_gpu_float(x.dtype(), "silu backward", [&](auto tag) {
      using T = decltype(tag);
      kc::silu_backward<T>(x.data<T>(), dy.data<T>(), dx.data<T>(), x.numel(), stream());
    });
  }

  void sigmoid_forward(const Tensor& x, const Tensor& y) const override {
    visit_gpu_float(x.dtype(), "sigmoid", [&](auto tag) {
      using T = decltype(tag);
      kc::sigmoid_forward<T>(x.data<T>(), y.data<T>(), x.numel(), stream());
    });
  }

  void sigmoid_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) const override {
    visit_gpu_float(y.dtype(), "sigmoid backward", [&](auto tag) {
      using T = decltype(tag);
      kc::sigmoid_backward<T>(y.data<T>(), dy.data<T>(), dx.data<T>(), y.numel(), stream());
    });
  }

  void swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& y) const override {
    visit_gpu_float(gate.dtype(), "swiglu", [&](auto tag) {
      using T = decltype(tag);
      kc::swiglu_forward<T>(gate.data<T>(), up.data<T>(), y.data<T>(), y.numel(), stream());
    });
  }

  void swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dy, const Tensor& dgate,
                       const Tensor& dup) const override {
    visit_gpu_float(gate.dtype(), "swiglu backward", [&](auto tag) {
      using T = decltype(tag);
      kc::swiglu_backward<T>(gate.data<T>(), up.data<T>(), dy.data<T>(), dgate.data<T>(),
                             dup.data<T>(), gate.numel(), stream());
    });
  }

  void sum_all(const Tensor& x, const Tensor& out) const override {
    visit_gpu_float(x.dtype(), "sum", [&](auto tag) {
      using T = decltype(tag);
      const Tensor partials = workspace(kc::kSumPartials);
      kc::sum_all<T>(x.data<T>(), x.numel(), partials.data<double>(), out.data<T>(), stream());
    });
  }

  void sum_to(const Tensor& x, const Shape& full, const Tensor& out,
              const Shape& out_strides) const override {
    visit_gpu_float(x.dtype(), "sum_to", [&](auto tag) {
      using T = decltype(tag);
      const Tensor partials = workspace(
          kc::sum_to_workspace(full.begin(), full.size(), out_strides.begin(), out.numel()));
      kc::sum_to<T>(x.data<T>(), full.begin(), full.size(), out.data<T>(), out_strides.begin(),
                    out.numel(), data_or_null(partials), stream());
    });
  }
};

}  // namespace

const ElementwiseKernels& elementwise_kernels() {
  static const CudaElementwiseKernels table;
  return table;
}

}  // namespace latte::cuda

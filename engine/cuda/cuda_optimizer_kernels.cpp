// The CUDA table of the optimizer, over kernels/cuda/adamw.cuh and kernels/cuda/grad_norm.cuh:
// fp32 parameters and moments, gradients in f32 or bf16. Each call splits its tensors by gradient
// dtype and hands each list to one multi-tensor kernel (a few launches for the whole model); the
// sum of squares is copied to the host, the one wait of a training step.
#include "engine/backend/optimizer_kernels.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_runtime.h"
#include "kernels/cuda/adamw.cuh"
#include "kernels/cuda/grad_norm.cuh"

namespace latte::cuda {

namespace {

namespace kc = kernels::cuda;

void require_dtype(const char* op, const char* what, const Tensor& t, DType dtype) {
  LATTE_CHECK(t.dtype() == dtype) << op << ": the CUDA kernel needs a " << dtype_name(dtype) << " "
                                  << what << ", got " << t.describe();
}

void require_gradient_dtype(const char* op, const Tensor& g) {
  LATTE_CHECK(g.dtype() == DType::F32 || g.dtype() == DType::BF16)
      << op << ": the CUDA kernel needs an F32 or BF16 gradient, got " << g.describe();
}

template <typename G>
kc::AdamWTensor<G> adamw_tensor(const AdamWParam& p) {
  return {
      p.param.data<float>(),   p.grad.data<G>(),
      p.exp_avg.data<float>(), p.exp_avg_sq.data<float>(),
      p.param.numel(),         p.compute_copy.defined() ? p.compute_copy.data<bf16>() : nullptr};
}

class CudaOptimizerKernels final : public OptimizerKernels {
 public:
  void adamw_update(const std::vector<AdamWParam>& params, const AdamWStep& step) const override {
    std::vector<kc::AdamWTensor<float>> f32_grads;
    std::vector<kc::AdamWTensor<bf16>> bf16_grads;
    for (const AdamWParam& p : params) {
      require_dtype("AdamW step", "parameter", p.param, DType::F32);
      require_dtype("AdamW step", "first moment", p.exp_avg, DType::F32);
      require_dtype("AdamW step", "second moment", p.exp_avg_sq, DType::F32);
      require_gradient_dtype("AdamW step", p.grad);
      if (p.compute_copy.defined())
        require_dtype("AdamW step", "compute copy", p.compute_copy, DType::BF16);
      if (p.grad.dtype() == DType::F32)
        f32_grads.push_back(adamw_tensor<float>(p));
      else
        bf16_grads.push_back(adamw_tensor<bf16>(p));
    }
    if (!f32_grads.empty())
      kc::adamw_update<float>(f32_grads.data(), static_cast<int64_t>(f32_grads.size()), step,
                              stream());
    if (!bf16_grads.empty())
      kc::adamw_update<bf16>(bf16_grads.data(), static_cast<int64_t>(bf16_grads.size()), step,
                             stream());
  }

  double sum_squares(const std::vector<Tensor>& grads) const override {
    std::vector<kc::GradTensor<float>> f32_grads;
    std::vector<kc::GradTensor<bf16>> bf16_grads;
    for (const Tensor& g : grads) {
      require_gradient_dtype("global_grad_norm", g);
      if (g.dtype() == DType::F32)
        f32_grads.push_back({g.data<float>(), g.numel()});
      else
        bf16_grads.push_back({g.data<bf16>(), g.numel()});
    }
    if (f32_grads.empty() && bf16_grads.empty()) return 0;
    // The partials, then the f32 and the bf16 gradients' sums.
    const Tensor buffer = Tensor::empty(Shape{kc::kGradNormPartials + 2}, DType::F64, Device::CUDA);
    double* partials = buffer.data<double>();
    double* sums = partials + kc::kGradNormPartials;
    if (!f32_grads.empty())
      kc::global_sum_squares<float>(f32_grads.data(), static_cast<int64_t>(f32_grads.size()),
                                    partials, sums, stream());
    if (!bf16_grads.empty())
      kc::global_sum_squares<bf16>(bf16_grads.data(), static_cast<int64_t>(bf16_grads.size()),
                                   partials, sums + 1, stream());
    const std::vector<double> host = buffer.narrow(0, kc::kGradNormPartials, 2).to_vector<double>();
    return (f32_grads.empty() ? 0.0 : host[0]) + (bf16_grads.empty() ? 0.0 : host[1]);
  }
};

}  // namespace

const OptimizerKernels& optimizer_kernels() {
  static const CudaOptimizerKernels table;
  return table;
}

}  // namespace latte::cuda

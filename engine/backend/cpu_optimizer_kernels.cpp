// The CPU table of the optimizer, over kernels/cpu/adamw.h and kernels/cpu/elementwise.h: one
// kernel call per tensor, parameters, gradients and moments of one dtype (f32 or f64); a compute
// copy is refreshed by a cast after its parameter's update.
#include "engine/backend/optimizer_kernels.h"
#include "engine/dispatch.h"
#include "kernels/cpu/elementwise.h"

namespace latte {

namespace {

namespace k = kernels::cpu;

class CpuOptimizerKernels final : public OptimizerKernels {
 public:
  void adamw_update(const std::vector<AdamWParam>& params, const AdamWStep& step) const override {
    for (const AdamWParam& p : params) {
      LATTE_CHECK(p.grad.dtype() == p.param.dtype())
          << "AdamW step: the CPU update needs the gradient in the parameter's dtype, got "
          << p.grad.describe() << " for " << p.param.describe();
      visit_float(p.param.dtype(), "AdamW step", [&](auto tag) {
        using T = decltype(tag);
        k::adamw_update(p.param.data<T>(), p.grad.data<T>(), p.exp_avg.data<T>(),
                        p.exp_avg_sq.data<T>(), p.param.numel(), step);
      });
      if (p.compute_copy.defined()) {
        Tensor copy = p.compute_copy;  // a handle to the same memory
        copy.copy_(p.param);
      }
    }
  }

  double sum_squares(const std::vector<Tensor>& grads) const override {
    double total = 0;
    for (const Tensor& g : grads)
      total += visit_float(g.dtype(), "global_grad_norm", [&](auto tag) {
        using T = decltype(tag);
        return k::sum_squares(g.data<T>(), g.numel());
      });
    return total;
  }
};

}  // namespace

const OptimizerKernels& cpu_optimizer_kernels() {
  static const CpuOptimizerKernels table;
  return table;
}

}  // namespace latte

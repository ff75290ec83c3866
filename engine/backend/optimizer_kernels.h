// Kernel table of the optimizer (engine/optim/adamw.cpp): the AdamW update of a list of
// parameters and the sum of squares behind global-norm clipping. Every tensor of a call is
// contiguous and on the table's device; AdamW::step has checked shapes and devices.
#pragma once

#include <vector>

#include "engine/backend/backend.h"
#include "engine/tensor.h"
#include "kernels/cpu/adamw.h"

namespace latte {

using kernels::cpu::AdamWStep;

// One parameter of an AdamW update: the parameter, its gradient and both moments, one shape;
// when defined, compute_copy (the parameter's cast kept by Tensor::to, same shape) receives the
// updated parameter in its own dtype.
struct AdamWParam {
  Tensor param, grad, exp_avg, exp_avg_sq, compute_copy;
};

class OptimizerKernels {
 public:
  virtual ~OptimizerKernels() = default;

  // One AdamW update (kernels/cpu/adamw.h) of every parameter of `params`, all with `step` (the
  // caller groups parameters by weight decay).
  virtual void adamw_update(const std::vector<AdamWParam>& params, const AdamWStep& step) const = 0;

  // Σ g² over every element of every tensor of `grads`, accumulated in double and returned on
  // the host (the CUDA table waits for its result).
  virtual double sum_squares(const std::vector<Tensor>& grads) const = 0;
};

inline const OptimizerKernels& optimizer_kernels(Device device) {
  return checked_table(backend_for(device).optimizer, device, "optimizer");
}

}  // namespace latte

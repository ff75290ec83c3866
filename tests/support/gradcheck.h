// Gradient checking of Tensor functions: compares autograd gradients with central finite
// differences of L = Σ f(x) ⊙ R (R a fixed random weighting, so every output element matters),
// all in double precision.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace latte::test {

struct GradcheckResult {
  double max_relative_error = 0;  // over all inputs, relative to each input gradient's scale
  std::string worst;              // which input
};

// inputs: f64 leaves with requires_grad. eps: finite-difference step.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, double eps = 1e-6);

}  // namespace latte::test

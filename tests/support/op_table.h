// The table of differentiable ops that drives the generic op tests (in the spirit of ggml's
// test-backend-ops): each entry builds its inputs' shapes and a function of them. The unit
// tests check every entry's gradient against finite differences in double precision; the CUDA
// tests run every entry on both devices and compare. Adding an op means adding entries here.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace latte::test {

struct OpCase {
  std::string name;
  std::vector<Shape> inputs;  // differentiable floating inputs, filled with Uniform(-1, 1)
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  double input_offset = 0.0;  // added to the inputs (e.g. keep them away from a kink)
};

const std::vector<OpCase>& op_cases();

// Random inputs for a case: dtype, requires_grad set, deterministic per (case, seed).
std::vector<Tensor> make_inputs(const OpCase& c, DType dtype, unsigned seed);

}  // namespace latte::test

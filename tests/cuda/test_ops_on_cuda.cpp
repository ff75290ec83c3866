// Every entry of the op table (tests/support/op_table.h) runs on the GPU and on the CPU from the
// same f32 inputs: the outputs and the gradients of every input (for one random upstream
// gradient) must agree.
#include <doctest/doctest.h>

#include <string>

#include "cuda/cuda_test_support.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "support/op_table.h"

namespace latte::test {

// f32 on both devices; the GPU sums in another order (cuBLAS tiles, tree reductions), so values
// differ by a few ulps times the reduction length (≤ 12 here): 1e-5 · (1 + |value|).
TEST_CASE("every op of the op table computes the same values and gradients on CUDA as on the CPU") {
  constexpr double kTolerance = 1e-5;
  for (const OpCase& c : op_cases()) {
    CAPTURE(c.name);
    const std::vector<Tensor> cpu_inputs = make_inputs(c, DType::F32, 1);
    std::vector<Tensor> gpu_inputs;
    for (const Tensor& t : cpu_inputs) {
      Tensor g = t.detach().to(Device::CUDA);
      g.set_requires_grad(true);
      gpu_inputs.push_back(g);
    }
    const Tensor y_cpu = c.fn(cpu_inputs);
    const Tensor y_gpu = c.fn(gpu_inputs);
    REQUIRE(y_gpu.device() == Device::CUDA);
    const std::string values = tensor_mismatch(y_gpu, y_cpu, kTolerance, kTolerance);
    CHECK_MESSAGE(values.empty(), c.name << " forward: " << values);

    Generator gen(99);
    const Tensor upstream = rand_uniform(y_cpu.shape(), gen, -1.0, 1.0, DType::F32);
    ops::sum(ops::mul(y_cpu, upstream)).backward();
    ops::sum(ops::mul(y_gpu, upstream.to(Device::CUDA))).backward();
    for (size_t i = 0; i < cpu_inputs.size(); ++i) {
      CAPTURE(i);
      REQUIRE(gpu_inputs[i].grad().defined() == cpu_inputs[i].grad().defined());
      if (!cpu_inputs[i].grad().defined()) continue;
      const std::string grads =
          tensor_mismatch(gpu_inputs[i].grad(), cpu_inputs[i].grad(), kTolerance, kTolerance);
      CHECK_MESSAGE(grads.empty(), c.name << " gradient of input " << i << ": " << grads);
    }
  }
}

}  // namespace latte::test

// Every entry of the op table (tests/support/op_table.h) runs on the GPU and on the CPU from the
// same f32 inputs: the outputs and the gradients of every input (for one random upstream
// gradient) must agree.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "engine/ops.h"
#include "engine/random.h"
#include "support/op_table.h"

namespace latte::test {

namespace {

// The largest |a - b| / (1 + |b|) over the elements, or a message when shapes differ.
std::string compare(const Tensor& gpu, const Tensor& cpu, double tolerance) {
  if (gpu.shape() != cpu.shape())
    return "shape " + gpu.shape().str() + " on the GPU, " + cpu.shape().str() + " on the CPU";
  const std::vector<double> a = gpu.to_vector<double>(), b = cpu.to_vector<double>();
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(a[i] - b[i]) / (1.0 + std::abs(b[i]));
    if (!(err <= worst)) worst = err, at = i;  // also catches NaN
  }
  if (worst <= tolerance) return "";
  std::ostringstream s;
  s << "element " << at << ": GPU " << a[at] << ", CPU " << b[at] << " (error " << worst << " > "
    << tolerance << ")";
  return s.str();
}

}  // namespace

// f32 on both devices; the GPU sums in another order (cuBLAS tiles, tree reductions), so values
// differ by a few ulps times the reduction length (≤ 12 here): 1e-5 relative to 1 + |value|.
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
    const std::string values = compare(y_gpu, y_cpu, kTolerance);
    CHECK_MESSAGE(values.empty(), c.name << " forward: " << values);

    Generator gen(99);
    const Tensor upstream = rand_uniform(y_cpu.shape(), gen, -1.0, 1.0, DType::F32);
    ops::sum(ops::mul(y_cpu, upstream)).backward();
    ops::sum(ops::mul(y_gpu, upstream.to(Device::CUDA))).backward();
    for (size_t i = 0; i < cpu_inputs.size(); ++i) {
      CAPTURE(i);
      REQUIRE(gpu_inputs[i].grad().defined() == cpu_inputs[i].grad().defined());
      if (!cpu_inputs[i].grad().defined()) continue;
      const std::string grads = compare(gpu_inputs[i].grad(), cpu_inputs[i].grad(), kTolerance);
      CHECK_MESSAGE(grads.empty(), c.name << " gradient of input " << i << ": " << grads);
    }
  }
}

}  // namespace latte::test

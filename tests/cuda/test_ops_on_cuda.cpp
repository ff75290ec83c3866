// Every entry of the op table (tests/support/op_table.h) runs on the GPU and on the CPU from the
// same f32 inputs: the outputs and the gradients of every input (for one random upstream
// gradient) must agree. And the ops of mixed precision over bf16 rows: linear with f32 master
// weights, the router's logits, RMSNorm and the embedding.
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "engine/ops.h"
#include "engine/ops/moe_ops.h"
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

// Mixed precision: bf16 activations, an f32 master weight and bias (not bf16-exact: the GPU rounds
// them for the product, so the CPU reference reads them rounded). The weight's gradient is the
// GEMM's fp32 accumulation of bf16-exact products, stored unrounded: within 1e-5 of the CPU's f32
// GEMM (another summation order over 120 rows), where a bf16 result would be off by up to 2^-9.
// y and dx are bf16 (one rounding): 4e-3; db sums 120 bf16-exact values in fp32, rounded once:
// 4e-3.
TEST_CASE("linear on CUDA with an f32 master weight and bf16 inputs returns unrounded f32 dW") {
  Generator gen(23);
  const Tensor x = bf16_exact({3, 40, 24}, gen), upstream = bf16_exact({3, 40, 16}, gen);
  const Tensor w = rand_uniform({16, 24}, gen, -1.0, 1.0, DType::F32);
  const Tensor b = rand_uniform({16}, gen, -1.0, 1.0, DType::F32);
  const Tensor x_cpu = leaf(x, DType::F32, Device::CPU), x_gpu = leaf(x, DType::BF16, Device::CUDA);
  const Tensor w_cpu = leaf(w.to(DType::BF16), DType::F32, Device::CPU),
               b_cpu = leaf(b.to(DType::BF16), DType::F32, Device::CPU);
  const Tensor w_gpu = leaf(w, DType::F32, Device::CUDA), b_gpu = leaf(b, DType::F32, Device::CUDA);
  const Tensor y_cpu = ops::linear(x_cpu, w_cpu, b_cpu), y_gpu = ops::linear(x_gpu, w_gpu, b_gpu);
  REQUIRE(y_gpu.dtype() == DType::BF16);
  const std::vector<float> y_ref = y_cpu.to_vector<float>();
  CHECK(tensor_mismatch(y_gpu, y_cpu, kBf16Rounding, kBf16Rounding * max_abs(y_ref)).empty());
  for (const Tensor* y : {&y_cpu, &y_gpu})
    ops::sum(ops::mul(y->to(DType::F32), upstream.to(y->device()))).backward();
  REQUIRE(w_gpu.grad().dtype() == DType::F32);
  const std::vector<float> dw = w_cpu.grad().to_vector<float>();
  const std::string dw_error =
      tensor_mismatch(w_gpu.grad(), w_cpu.grad(), 1e-5, 1e-5 * max_abs(dw));
  CHECK_MESSAGE(dw_error.empty(), "dW: " << dw_error);
  const std::vector<float> db = b_cpu.grad().to_vector<float>();
  CHECK(tensor_mismatch(b_gpu.grad(), b_cpu.grad(), kBf16Rounding, kBf16Rounding * max_abs(db))
            .empty());
  const std::vector<float> dx = x_cpu.grad().to_vector<float>();
  CHECK(tensor_mismatch(x_gpu.grad(), x_cpu.grad(), kBf16Rounding, kBf16Rounding * max_abs(dx))
            .empty());
}

// The router's logits with bf16 rows and the f32 router weight, on the fused kernels (8 experts x
// 64 columns) and on the cuBLAS path of weights too large for them (48 x 1024), against the CPU
// on the same values: fp32 sums of bf16-exact products in other orders (1e-5 of the scale) for the
// logits and dw; dx rounds to bf16 once (4e-3).
TEST_CASE("moe_router_logits on CUDA, fused and cuBLAS, matches the CPU with bf16 rows") {
  Generator gen(24);
  for (const auto& [n, d, e] : {std::array<int64_t, 3>{70, 64, 8}, {70, 1024, 48}}) {
    CAPTURE(e);
    const Tensor x = bf16_exact({n, d}, gen), upstream = bf16_exact({n, e}, gen);
    const Tensor w = rand_uniform({e, d}, gen, -1.0, 1.0, DType::F32);
    const Tensor x_cpu = leaf(x, DType::F32, Device::CPU), w_cpu = leaf(w, DType::F32, Device::CPU);
    const Tensor x_gpu = leaf(x, DType::BF16, Device::CUDA),
                 w_gpu = leaf(w, DType::F32, Device::CUDA);
    const Tensor l_cpu = ops::moe_router_logits(x_cpu, w_cpu);
    const Tensor l_gpu = ops::moe_router_logits(x_gpu, w_gpu);
    REQUIRE(l_gpu.dtype() == DType::F32);
    const auto scale = [](const Tensor& t) { return max_abs(t.to_vector<float>()); };
    CHECK(tensor_mismatch(l_gpu, l_cpu, 1e-5, 1e-5 * scale(l_cpu)).empty());
    ops::sum(ops::mul(l_cpu, upstream)).backward();
    ops::sum(ops::mul(l_gpu, upstream.to(Device::CUDA))).backward();
    REQUIRE(x_gpu.grad().dtype() == DType::BF16);
    CHECK(tensor_mismatch(x_gpu.grad(), x_cpu.grad(), kBf16Rounding,
                          kBf16Rounding * scale(x_cpu.grad()))
              .empty());
    CHECK(tensor_mismatch(w_gpu.grad(), w_cpu.grad(), 1e-5, 1e-5 * scale(w_cpu.grad())).empty());
  }
}

// RMSNorm and the embedding with bf16 rows under f32 master weights (not bf16-exact), against the
// CPU in f32 on the same values: the weights are read as stored, so y and the looked-up rows are
// the f32 results rounded once (y: fp32 statistics in another order, 4e-3; rows: exact), and the
// weights' gradients are fp32 sums stored unrounded: RMSNorm's within 1e-5 of the scale (another
// summation order over 120 rows), the embedding's exact (the CPU's token order); a bf16 rounding
// of either would be off by up to 2^-9. The ops return the weights' gradients in f32.
TEST_CASE("RMSNorm and the embedding on CUDA read f32 master weights under bf16 rows") {
  Generator gen(25);
  const Tensor x = bf16_exact({3, 40, 24}, gen), upstream = bf16_exact({3, 40, 24}, gen);
  const Tensor w = rand_uniform({24}, gen, 0.5, 1.5, DType::F32);
  const Tensor x_cpu = leaf(x, DType::F32, Device::CPU), x_gpu = leaf(x, DType::BF16, Device::CUDA);
  const Tensor w_cpu = leaf(w, DType::F32, Device::CPU), w_gpu = leaf(w, DType::F32, Device::CUDA);
  const Tensor y_cpu = ops::rms_norm(x_cpu, w_cpu, 1e-6), y_gpu = ops::rms_norm(x_gpu, w_gpu, 1e-6);
  REQUIRE(y_gpu.dtype() == DType::BF16);
  const auto scale = [](const Tensor& t) { return max_abs(t.to_vector<float>()); };
  CHECK(tensor_mismatch(y_gpu, y_cpu, kBf16Rounding, kBf16Rounding * scale(y_cpu)).empty());
  ops::sum(ops::mul(y_cpu, upstream)).backward();
  ops::sum(ops::mul(y_gpu.to(DType::F32), upstream.to(Device::CUDA))).backward();
  REQUIRE(w_gpu.grad().dtype() == DType::F32);
  CHECK(tensor_mismatch(w_gpu.grad(), w_cpu.grad(), 1e-5, 1e-5 * scale(w_cpu.grad())).empty());
  CHECK(tensor_mismatch(x_gpu.grad(), x_cpu.grad(), kBf16Rounding,
                        kBf16Rounding * scale(x_cpu.grad()))
            .empty());

  const Tensor table = rand_uniform({50, 24}, gen, -1.0, 1.0, DType::F32);
  std::vector<int32_t> id_values(120);  // each of the 50 rows taken two or three times
  for (size_t i = 0; i < id_values.size(); ++i) id_values[i] = static_cast<int32_t>(i * 37 % 50);
  const Tensor ids = Tensor::from_vector(id_values, Shape{3, 40});
  const Tensor t_cpu = leaf(table, DType::F32, Device::CPU),
               t_gpu = leaf(table, DType::F32, Device::CUDA);
  const Tensor rows_cpu = ops::embedding(ids, t_cpu, DType::F32);
  const Tensor rows_gpu = ops::embedding(ids.to(Device::CUDA), t_gpu, DType::BF16);
  REQUIRE(rows_gpu.dtype() == DType::BF16);
  CHECK(tensor_mismatch(rows_gpu, rows_cpu.to(DType::BF16), 0, 0).empty());
  ops::sum(ops::mul(rows_cpu, upstream)).backward();
  ops::sum(ops::mul(rows_gpu.to(DType::F32), upstream.to(Device::CUDA))).backward();
  REQUIRE(t_gpu.grad().dtype() == DType::F32);
  CHECK(tensor_mismatch(t_gpu.grad(), t_cpu.grad(), 0, 0).empty());
}

}  // namespace latte::test

// The attention and rope ops (engine/ops/attention_ops.cpp) on CUDA in bf16 against the CPU in
// f32 on the same values: naive and flash attention with GQA and causal masking, forward and the
// gradients of q, k and v; rope with f32 tables and with bf16 tables the table converts; and the
// error naming flash_attention and the head dims its CUDA kernels do not take. (The f32 entries
// of the op table run on both devices in test_ops_on_cuda.cpp.)
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "engine/cuda/cuda_runtime.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace latte::test {

namespace {

// "" when |gpu - cpu| <= tol · (|cpu| + max |cpu|) everywhere, else the worst element.
std::string compare(const Tensor& gpu, const Tensor& cpu, double tol) {
  return tensor_mismatch(gpu, cpu, tol, tol * max_abs(cpu.to_vector<float>()));
}

// sum(y * upstream) in f32 on y's device, backpropagated.
void backward_with(const Tensor& y, const Tensor& upstream) {
  ops::sum(ops::mul(y.to(DType::F32), upstream.to(y.device()))).backward();
}

}  // namespace

// bf16 on the GPU: inputs are bf16-exact and the upstream gradient too, but the kernels round
// scores or probabilities, d scores and their outputs to bf16 (<= 3.9e-3 each), as in the kernel
// cases (1% for o, 2% for the gradients); here the flash backward also reads the GPU's own bf16
// o: 3% for the gradients.
TEST_CASE("attention on CUDA in bf16 matches the CPU in f32 on the same values") {
  REQUIRE(cuda::device_count() > 0);
  Generator gen(21);
  const Tensor q = bf16_exact({2, 9, 4, 32}, gen), k = bf16_exact({2, 11, 2, 32}, gen),
               v = bf16_exact({2, 11, 2, 24}, gen), up = bf16_exact({2, 9, 4, 24}, gen);
  for (const ops::AttentionKernel kernel :
       {ops::AttentionKernel::kNaive, ops::AttentionKernel::kFlash}) {
    CAPTURE(kernel == ops::AttentionKernel::kFlash ? "flash" : "naive");
    std::vector<Tensor> cpu, gpu;
    for (const Tensor* t : {&q, &k, &v}) {
      cpu.push_back(leaf(*t, DType::F32, Device::CPU));
      gpu.push_back(leaf(*t, DType::BF16, Device::CUDA));
    }
    const Tensor o_cpu = ops::attention(cpu[0], cpu[1], cpu[2], 0.3, true, kernel);
    const Tensor o_gpu = ops::attention(gpu[0], gpu[1], gpu[2], 0.3, true, kernel);
    REQUIRE(o_gpu.device() == Device::CUDA);
    REQUIRE(o_gpu.dtype() == DType::BF16);
    const std::string values = compare(o_gpu, o_cpu, 1e-2);
    CHECK_MESSAGE(values.empty(), "o: " << values);
    backward_with(o_cpu, up);
    backward_with(o_gpu, up);
    for (size_t i = 0; i < cpu.size(); ++i) {
      CAPTURE(i);
      REQUIRE(gpu[i].grad().defined());
      const std::string grads = compare(gpu[i].grad(), cpu[i].grad(), 3e-2);
      CHECK_MESSAGE(grads.empty(), "gradient of input " << i << ": " << grads);
    }
  }
}

// bf16 x: the rotation runs in fp32 on bf16-exact values and tables, then rounds once to bf16
// (at most 2^-9 relative): 4e-3.
TEST_CASE("rope on CUDA in bf16 matches the CPU with f32 tables and with bf16 tables") {
  REQUIRE(cuda::device_count() > 0);
  Generator gen(22);
  const Tensor x = bf16_exact({2, 6, 3, 8}, gen), up = bf16_exact({2, 6, 3, 8}, gen);
  // Tables of angles position * 0.6^i; the bf16 pair holds the rounded values, which the CPU
  // reference then reads in f32.
  std::vector<float> c, s;
  for (int pos = 0; pos < 8; ++pos)
    for (int i = 0; i < 4; ++i) {
      c.push_back(static_cast<float>(std::cos(pos * std::pow(0.6, i))));
      s.push_back(static_cast<float>(std::sin(pos * std::pow(0.6, i))));
    }
  const Tensor cos = Tensor::from_vector(c, Shape{8, 4}), sin = Tensor::from_vector(s, Shape{8, 4});
  for (const DType table_dtype : {DType::F32, DType::BF16}) {
    CAPTURE(dtype_name(table_dtype));
    const Tensor cos_t = cos.to(table_dtype), sin_t = sin.to(table_dtype);
    const Tensor x_cpu = leaf(x, DType::F32, Device::CPU),
                 x_gpu = leaf(x, DType::BF16, Device::CUDA);
    const Tensor y_cpu = ops::rope(x_cpu, cos_t.to(DType::F32), sin_t.to(DType::F32), 1, true);
    const Tensor y_gpu = ops::rope(x_gpu, cos_t.to(Device::CUDA), sin_t.to(Device::CUDA), 1, true);
    const std::string values = compare(y_gpu, y_cpu, 4e-3);
    CHECK_MESSAGE(values.empty(), "y: " << values);
    backward_with(y_cpu, up);
    backward_with(y_gpu, up);
    const std::string grads = compare(x_gpu.grad(), x_cpu.grad(), 4e-3);
    CHECK_MESSAGE(grads.empty(), "dx: " << grads);
  }
}

TEST_CASE(
    "flash attention on CUDA names the head dims it cannot take; naive attention takes them") {
  REQUIRE(cuda::device_count() > 0);
  const Tensor q = Tensor::zeros(Shape{1, 4, 2, 320}, DType::F32, Device::CUDA);
  const Tensor v = Tensor::ones(Shape{1, 4, 2, 64}, DType::F32, Device::CUDA);
  std::string message;
  try {
    ops::attention(q, q, v, 0.1, true, ops::AttentionKernel::kFlash);
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find("flash_attention") != std::string::npos);
  CHECK(message.find("qk_dim 320") != std::string::npos);
  // Every probability row sums to 1 and v is all ones: o is 1 up to the fp32 rounding of the
  // probabilities (1/n for n <= 4 keys) and their sum.
  const Tensor o = ops::attention(q, q, v, 0.1, true, ops::AttentionKernel::kNaive);
  const std::vector<float> values = o.to_vector<float>();
  REQUIRE(values.size() == size_t{1 * 4 * 2 * 64});
  for (float x : values) REQUIRE(std::abs(x - 1.f) <= 1e-6f);
}

}  // namespace latte::test

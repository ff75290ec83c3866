// The autograd engine: accumulation, no-grad scopes, release of saved tensors, error cases.
#include <doctest/doctest.h>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/ops.h"

using namespace latte;

TEST_CASE("gradients accumulate across backward calls and through shared uses") {
  Tensor x = Tensor::from_vector(std::vector<double>{2.0}, {1});
  x.set_requires_grad(true);
  ops::sum(ops::mul(x, x)).backward();  // d(x²)/dx = 4
  CHECK(x.grad().item() == 4.0);
  ops::sum(ops::add(ops::scale(x, 3.0), x)).backward();  // + 4
  CHECK(x.grad().item() == 8.0);
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("no-grad scope records nothing") {
  Tensor x = Tensor::ones({3}, DType::F64);
  x.set_requires_grad(true);
  {
    NoGradGuard guard;
    Tensor y = ops::scale(x, 2.0);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  CHECK(ops::scale(x, 2.0).requires_grad());
}

TEST_CASE("backward needs a one-element tensor that requires grad, and runs once") {
  Tensor x = Tensor::ones({3}, DType::F64);
  CHECK_THROWS_WITH_AS(ops::sum(x).backward(), doctest::Contains("does not require grad"), Error);
  x.set_requires_grad(true);
  Tensor y = ops::scale(x, 2.0);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("needs a one-element loss, got f64[3]"),
                       Error);
  Tensor loss = ops::sum(y);
  loss.backward();
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("already used by a backward pass"),
                       Error);
  Tensor ids = Tensor::zeros({2}, DType::I32);
  CHECK_THROWS_WITH_AS(ids.set_requires_grad(true), doctest::Contains("floating-point"), Error);
}

TEST_CASE("saved activations are freed after backward") {
  Allocator& cpu = allocator_for(Device::CPU);
  Tensor w = Tensor::ones({256, 256}, DType::F32);
  w.set_requires_grad(true);
  const size_t before = cpu.current_bytes();
  Tensor loss;
  {
    Tensor x = Tensor::ones({64, 256}, DType::F32);
    Tensor h = ops::silu(ops::linear(x, w));  // saves x and the linear output
    loss = ops::mean(ops::linear(h, w));
  }
  const size_t with_graph = cpu.current_bytes();
  CHECK(with_graph > before + 3 * 64 * 256 * 4);  // x, h, the pre-activation at least
  loss.backward();
  loss = Tensor();
  // Only w's gradient (256*256 floats) remains.
  CHECK(cpu.current_bytes() == before + 256 * 256 * 4);
}

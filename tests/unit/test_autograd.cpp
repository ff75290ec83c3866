// The autograd engine: accumulation, window gradients of slices, no-grad scopes, release of saved
// tensors, error cases (among them gradients of the wrong dtype).
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

namespace {

std::vector<double> values(const Tensor& t) {
  return t.contiguous().to_vector<double>();
}

// x (a leaf) and y = 1 · x (a tensor with a node, whose slices' gradients meet before its node
// runs) as the bases to slice.
std::pair<Tensor, Tensor> leaf_and_node(const std::vector<double>& v, const Shape& shape) {
  Tensor x = Tensor::from_vector(v, shape);
  x.set_requires_grad(true);
  return {x, ops::scale(x, 1.0)};
}

}  // namespace

TEST_CASE("slices of one tensor send their gradients into their windows of its gradient") {
  const std::vector<double> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
  for (const bool through_node : {false, true}) {
    INFO("sliced tensor has a node: " << through_node);
    SUBCASE("the parts of a split, tiling the dimension") {
      auto [x, y] = leaf_and_node(v, {2, 7});
      const Tensor base = through_node ? y : x;
      const std::vector<Tensor> parts = ops::split(base, {2, 4, 1}, 1);
      ops::sum(ops::add(ops::add(ops::sum(ops::scale(parts[0], 2.0)),
                                 ops::sum(ops::scale(parts[1], 3.0))),
                        ops::sum(ops::scale(parts[2], 4.0))))
          .backward();
      CHECK(values(x.grad()) == std::vector<double>{2, 2, 3, 3, 3, 3, 4, 2, 2, 3, 3, 3, 3, 4});
    }
    SUBCASE("overlapping narrows add where they overlap") {
      auto [x, y] = leaf_and_node({1, 2, 3, 4, 5}, {5});
      const Tensor base = through_node ? y : x;
      ops::add(ops::sum(base.narrow(0, 0, 3)), ops::sum(ops::scale(base.narrow(0, 2, 3), 10.0)))
          .backward();
      CHECK(values(x.grad()) == std::vector<double>{1, 1, 11, 10, 10});
    }
    SUBCASE("a narrow next to a use of the whole tensor") {
      auto [x, y] = leaf_and_node({1, 2, 3, 4, 5}, {5});
      const Tensor base = through_node ? y : x;
      ops::add(ops::sum(base), ops::sum(ops::scale(base.narrow(0, 1, 2), 5.0))).backward();
      CHECK(values(x.grad()) == std::vector<double>{1, 6, 6, 1, 1});
    }
    SUBCASE("one narrow: zero outside its window") {
      auto [x, y] = leaf_and_node({1, 2, 3, 4, 5}, {5});
      const Tensor base = through_node ? y : x;
      ops::sum(ops::mul(base.narrow(0, 1, 2), base.narrow(0, 1, 2))).backward();
      CHECK(values(x.grad()) == std::vector<double>{0, 4, 6, 0, 0});
    }
    SUBCASE("narrows along different dimensions") {
      auto [x, y] = leaf_and_node({1, 2, 3, 4, 5, 6}, {2, 3});
      const Tensor base = through_node ? y : x;
      ops::add(ops::sum(base.narrow(0, 0, 1)), ops::sum(ops::scale(base.narrow(1, 2, 1), 3.0)))
          .backward();
      CHECK(values(x.grad()) == std::vector<double>{1, 1, 4, 0, 0, 3});
    }
  }
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

TEST_CASE("a gradient in another dtype than its input's is an error naming the op") {
  Tensor x = Tensor::ones({2}, DType::F64);
  x.set_requires_grad(true);
  const Tensor y = record("narrowing_op", Tensor::ones({2}, DType::F64), {x},
                          [](const Tensor& g) { return std::vector<Tensor>{g.to(DType::F32)}; });
  CHECK_THROWS_WITH_AS(ops::sum(y).backward(),
                       doctest::Contains("backward of narrowing_op: the gradient of input 0, "
                                         "f32[2] cpu, does not have the input's dtype F64"),
                       Error);
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

TEST_CASE("a leaf takes over a fresh gradient instead of copying it") {
  Allocator& cpu = allocator_for(Device::CPU);
  const int64_t n = 1 << 16;
  const size_t grad_bytes = n * sizeof(float);
  Tensor x = Tensor::ones({n}, DType::F32);
  x.set_requires_grad(true);
  Tensor loss = ops::sum(ops::mul(x, x));
  cpu.reset_peak();
  const size_t before = cpu.current_bytes();
  loss.backward();
  // In flight: the seed expanded by sum's backward and mul's two products, one per use of x,
  // which become x's gradient (the first taken over, the second added into it). A copy of the
  // first would be a fourth gradient-sized block.
  CHECK(cpu.peak_bytes() - before < 4 * grad_bytes);
  CHECK(values(x.grad()) == std::vector<double>(n, 2.0));
}

// Forward values of each op against results worked out by hand.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/backend/nn_kernels.h"
#include "engine/ops.h"
#include "engine/random.h"

using namespace latte;

namespace {
Tensor f64(const std::vector<double>& v, const Shape& s) {
  return Tensor::from_vector(v, s);
}
void check_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  const auto got = t.to_vector<double>();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i)
    CHECK(got[i] == doctest::Approx(expected[i]).epsilon(tol));
}
}  // namespace

TEST_CASE("add, sub and mul broadcast over leading and size-1 dimensions") {
  const Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  check_values(ops::add(a, f64({10, 20, 30}, {3})), {11, 22, 33, 14, 25, 36});
  check_values(ops::sub(a, f64({1, 2}, {2, 1})), {0, 1, 2, 2, 3, 4});
  check_values(ops::mul(a, a), {1, 4, 9, 16, 25, 36});
  check_values(ops::scale(a, 0.5), {0.5, 1, 1.5, 2, 2.5, 3});
  CHECK_THROWS_WITH_AS(ops::add(a, f64({1, 2}, {2})),
                       doctest::Contains("add: shapes [2, 3] and [2]"), Error);
}

TEST_CASE("sum, mean and sum_to") {
  const Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(ops::sum(a).item() == 21);
  CHECK(ops::mean(a).item() == 3.5);
  check_values(ops::sum_to(a, {3}), {5, 7, 9});
  check_values(ops::sum_to(a, {2, 1}), {6, 15});
}

TEST_CASE("matmul and linear") {
  const Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = f64({1, 0, 0, 1, 1, 1}, {3, 2});
  check_values(ops::matmul(a, b), {4, 5, 10, 11});
  check_values(ops::matmul(a, a, false, true), {14, 32, 32, 77});
  check_values(ops::matmul(a, a, true, false), {17, 22, 27, 22, 29, 36, 27, 36, 45});
  // linear: x [1,3] · W[2,3]ᵀ + b
  check_values(ops::linear(f64({1, 1, 1}, {1, 3}), a, f64({0.5, -1}, {2})), {6.5, 14});
  CHECK_THROWS_WITH_AS(ops::matmul(a, a), doctest::Contains("matmul: inner dimensions differ"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::linear(b, a), doctest::Contains("linear: input f64[3, 2]"), Error);
}

TEST_CASE("silu, sigmoid, swiglu, softmax") {
  const Tensor x = f64({0, 1, -2}, {3});
  const double s1 = 1 / (1 + std::exp(-1.0)), s2 = 1 / (1 + std::exp(2.0));
  check_values(ops::sigmoid(x), {0.5, s1, s2});
  check_values(ops::silu(x), {0, s1, -2 * s2});
  check_values(ops::swiglu(x, f64({3, 2, 1}, {3})), {0, 2 * s1, -2 * s2});
  const double e = std::exp(1.0);
  check_values(ops::softmax(f64({0, 1, 0, 0}, {2, 2})), {1 / (1 + e), e / (1 + e), 0.5, 0.5});
}

TEST_CASE("rms_norm") {
  // rows [3, 4]: mean square 12.5; [0, 0]: stays 0.
  const Tensor y = ops::rms_norm(f64({3, 4, 0, 0}, {2, 2}), f64({1, 2}, {2}), 0.0 + 1e-12);
  const double r = 1 / std::sqrt(12.5 + 1e-12);
  check_values(y, {3 * r, 8 * r, 0, 0});
}

TEST_CASE("rms_norm of a narrow reads its rows in place and nothing between them") {
  // Rows [3, 4] and [0, 0], 3 apart: the third column must not enter the norm.
  const Tensor x = f64({3, 4, 99, 0, 0, -7}, {2, 3});
  const Tensor y = ops::rms_norm(x.narrow(1, 0, 2), f64({1, 2}, {2}), 1e-12);
  const double r = 1 / std::sqrt(12.5 + 1e-12);
  check_values(y, {3 * r, 8 * r, 0, 0});
  // What rms_norm reads in place: leading dimensions that fold into one row stride.
  const Tensor t = Tensor::zeros(Shape{2, 3, 12}, DType::F64);
  CHECK(uniform_row_stride(t) == 12);
  CHECK(uniform_row_stride(t.narrow(2, 2, 8)) == 12);
  CHECK(uniform_row_stride(t.narrow(1, 1, 1).narrow(2, 0, 8)) == 36);  // size 1 is skipped
  CHECK_FALSE(uniform_row_stride(t.narrow(1, 0, 2)).has_value());      // rows 12, then 36 apart
  CHECK_FALSE(uniform_row_stride(t.transpose(1, 2)).has_value());      // columns 12 apart
}

TEST_CASE("cross_entropy with ignore_index") {
  // logits rows [0, ln 3] -> p(1) = 3/4; [0, 0] -> p(0) = 1/2; third row ignored.
  const Tensor logits = f64({0, std::log(3.0), 0, 0, 5, -5}, {3, 2});
  const Tensor targets = Tensor::from_vector(std::vector<int32_t>{1, 0, -100}, {3});
  CHECK(ops::cross_entropy(logits, targets).item() ==
        doctest::Approx((-std::log(0.75) - std::log(0.5)) / 2).epsilon(1e-12));
  const Tensor bad = Tensor::from_vector(std::vector<int32_t>{1, 2, 0}, {3});
  CHECK_THROWS_WITH_AS(ops::cross_entropy(logits, bad),
                       doctest::Contains("id 2 at flat position 1"), Error);
}

TEST_CASE("embedding gathers rows and rejects out-of-range ids") {
  const Tensor w = f64({0, 1, 10, 11, 20, 21}, {3, 2});
  check_values(ops::embedding(Tensor::from_vector(std::vector<int32_t>{2, 0, 2}, {3}), w),
               {20, 21, 0, 1, 20, 21});
  CHECK_THROWS_WITH_AS(ops::embedding(Tensor::from_vector(std::vector<int32_t>{3}, {1}), w),
                       doctest::Contains("outside [0, 3)"), Error);
}

TEST_CASE("concat and split") {
  const Tensor a = f64({1, 2, 3, 4}, {2, 2}), b = f64({5, 6}, {2, 1});
  const Tensor c = ops::concat({a, b}, 1);
  check_values(c, {1, 2, 5, 3, 4, 6});
  const auto parts = ops::split(c, {1, 2}, 1);
  check_values(parts[1], {2, 5, 4, 6});
  CHECK_THROWS_WITH_AS(ops::split(c, {1, 1}, 1), doctest::Contains("split: sizes add up to 2"),
                       Error);
}

TEST_CASE("dropout: inverted scaling, deterministic per seed, identity at p = 0") {
  const Tensor x = Tensor::ones({1000}, DType::F64);
  Generator g1(3), g2(3);
  const auto y1 = ops::dropout(x, 0.25, g1).to_vector<double>();
  const auto y2 = ops::dropout(x, 0.25, g2).to_vector<double>();
  CHECK(y1 == y2);
  int kept = 0;
  for (double v : y1) {
    CHECK((v == 0.0 || v == doctest::Approx(1 / 0.75)));
    kept += v != 0.0;
  }
  CHECK(kept > 700);  // Binomial(1000, 0.75): mean 750, sd 13.7
  CHECK(kept < 800);
  Generator g3(3);
  CHECK(ops::dropout(x, 0.0, g3).shares_storage_with(x));
}

// rope takes x by value: a tensor handed over with the only reference to its memory is rotated in
// that memory (its pass-through features never move), with the values and gradients of the copying
// path; a tensor the caller keeps, or a leaf that requires grad, is left as it was.
TEST_CASE("rope rotates in the memory of a tensor handed over to it, and only then") {
  Generator gen(5);
  const Tensor cos = rand_uniform({4, 2}, gen, -1.0, 1.0, DType::F64);
  const Tensor sin = rand_uniform({4, 2}, gen, -1.0, 1.0, DType::F64);
  const Tensor upstream = randn({2, 3, 2, 6}, gen, 0.0, 1.0, DType::F64);
  Tensor a = randn({2, 3, 2, 6}, gen, 0.0, 1.0, DType::F64);
  a.set_requires_grad(true);
  Tensor b = a.detach().clone();
  b.set_requires_grad(true);

  Tensor kept = ops::mul(b, b);  // the caller keeps it: rope copies
  const std::vector<double> kept_before = kept.to_vector<double>();
  const Tensor y_copied = ops::rope(kept, cos, sin, 1, false, 2);
  CHECK_FALSE(y_copied.shares_storage_with(kept));
  CHECK(kept.to_vector<double>() == kept_before);

  Tensor handed = ops::mul(a, a);  // handed over: rope takes its memory
  const void* memory = handed.raw_data();
  const Tensor y = ops::rope(std::move(handed), cos, sin, 1, false, 2);
  CHECK(y.raw_data() == memory);
  CHECK(y.to_vector<double>() == y_copied.to_vector<double>());

  ops::sum(ops::mul(y, upstream)).backward();
  ops::sum(ops::mul(y_copied, upstream)).backward();
  CHECK(a.grad().to_vector<double>() == b.grad().to_vector<double>());

  Tensor leaf = a.detach().clone();
  leaf.set_requires_grad(true);
  const void* leaf_memory = leaf.raw_data();
  CHECK(ops::rope(std::move(leaf), cos, sin, 1, false, 2).raw_data() != leaf_memory);
}

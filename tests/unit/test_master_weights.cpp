// Master weights (mixed precision) on the CPU: f64 parameters with f32 activations, the CPU twin
// of f32 masters with bf16 activations on the GPU. linear and the MoE experts read the weights
// rounded to the activations' dtype (a parameter's kept compute copy) and return the weights'
// gradients in their own dtype, equal to the rounded weights' gradients widened (the CPU widens
// f32 products; the GPU stores its fp32 accumulators). The router's logits, RMSNorm and the
// embedding instead keep the weight's precision: they read it as stored, round each result to the
// activations' dtype once, and sum its gradient at the weight's precision.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/error.h"
#include "engine/ops.h"
#include "engine/ops/moe_ops.h"
#include "engine/random.h"

namespace latte {

namespace {

Tensor parameter(const Shape& shape, uint64_t seed, DType dtype) {
  Generator gen(seed);
  Tensor p = randn(shape, gen, 0.0, 1.0, dtype);
  p.set_requires_grad(true);
  return p;
}

// A parameter with p's values rounded to f32.
Tensor rounded_copy(const Tensor& p) {
  Tensor copy = p.detach().to(DType::F32).clone().detach();
  copy.set_requires_grad(true);
  return copy;
}

// The f32 values of `narrow`, widened, against `wide`'s f64 values: equal element for element.
void check_widened(const Tensor& wide, const Tensor& narrow) {
  REQUIRE(wide.dtype() == DType::F64);
  REQUIRE(narrow.dtype() == DType::F32);
  const std::vector<double> w = wide.to_vector<double>();
  const std::vector<float> n = narrow.to_vector<float>();
  REQUIRE(w.size() == n.size());
  for (size_t i = 0; i < w.size(); ++i) {
    CAPTURE(i);
    CHECK(w[i] == static_cast<double>(n[i]));
  }
}

}  // namespace

TEST_CASE("linear reads f64 master weights rounded to f32 and returns their gradients in f64") {
  Generator gen(3);
  Tensor x = randn({2, 3, 6}, gen, 0.0, 1.0, DType::F32);
  x.set_requires_grad(true);
  Tensor x_ref = x.detach().clone().detach();
  x_ref.set_requires_grad(true);
  const Tensor w = parameter({5, 6}, 4, DType::F64), b = parameter({5}, 5, DType::F64);
  const Tensor w_ref = rounded_copy(w), b_ref = rounded_copy(b);
  const Tensor upstream = randn({2, 3, 5}, gen, 0.0, 1.0, DType::F32);

  const Tensor y = ops::linear(x, w, b), y_ref = ops::linear(x_ref, w_ref, b_ref);
  CHECK(y.dtype() == DType::F32);
  CHECK(y.to_vector<float>() == y_ref.to_vector<float>());
  REQUIRE(w.compute_copy().defined());  // the rounded weight is kept for the next pass
  CHECK(w.compute_copy().dtype() == DType::F32);

  ops::sum(ops::mul(y, upstream)).backward();
  ops::sum(ops::mul(y_ref, upstream)).backward();
  check_widened(w.grad(), w_ref.grad());
  check_widened(b.grad(), b_ref.grad());
  CHECK(x.grad().to_vector<float>() == x_ref.grad().to_vector<float>());
}

TEST_CASE("linear takes a weight of the input's dtype or its master dtype only") {
  Generator gen(6);
  const Tensor x64 = randn({2, 4}, gen, 0.0, 1.0, DType::F64);
  const Tensor w32 = randn({3, 4}, gen, 0.0, 1.0, DType::F32);
  CHECK_THROWS_WITH_AS(
      ops::linear(x64, w32),
      doctest::Contains("weight f32[3, 4] cpu must have the input's dtype or its master dtype F64"),
      Error);
  const Tensor x32 = randn({2, 4}, gen, 0.0, 1.0, DType::F32);
  const Tensor bias16 = randn({3}, gen, 0.0, 1.0, DType::F32).to(DType::BF16);
  CHECK_THROWS_WITH_AS(ops::linear(x32, w32, bias16), doctest::Contains("bias bf16[3]"), Error);
}

TEST_CASE("MoE experts with f64 master weights compute in f32 and return f64 gradients") {
  const int64_t n = 7, d = 4, inter = 3, n_experts = 3;
  // Token t picks experts t % 3 and (t + 1) % 3: every expert gets rows.
  std::vector<int32_t> ids;
  for (int32_t t = 0; t < n; ++t) ids.insert(ids.end(), {t % 3, (t + 1) % 3});
  const ops::MoeDispatchPlan plan =
      ops::moe_dispatch(Tensor::from_vector<int32_t>(ids, {n, 2}), n_experts, 0.0);
  Generator gen(8);
  Tensor x = randn({plan->n_kept(), d}, gen, 0.0, 1.0, DType::F32);
  x.set_requires_grad(true);
  ops::MoeExpertWeights master, reference;
  uint64_t seed = 10;
  for (int64_t e = 0; e < n_experts; ++e) {
    for (auto [list, shape] : {std::pair{&master.gate_proj, Shape{inter, d}},
                               std::pair{&master.up_proj, Shape{inter, d}},
                               std::pair{&master.down_proj, Shape{d, inter}}})
      list->push_back(parameter(shape, seed++, DType::F64));
    reference.gate_proj.push_back(rounded_copy(master.gate_proj.back()));
    reference.up_proj.push_back(rounded_copy(master.up_proj.back()));
    reference.down_proj.push_back(rounded_copy(master.down_proj.back()));
  }
  const Tensor upstream = randn({plan->n_kept(), d}, gen, 0.0, 1.0, DType::F32);
  const Tensor y = ops::moe_expert_mlps(x, plan, master);
  const Tensor y_ref = ops::moe_expert_mlps(x.detach(), plan, reference);
  CHECK(y.dtype() == DType::F32);
  CHECK(y.to_vector<float>() == y_ref.to_vector<float>());
  ops::sum(ops::mul(y, upstream)).backward();
  ops::sum(ops::mul(y_ref, upstream)).backward();
  for (int64_t e = 0; e < n_experts; ++e) {
    CAPTURE(e);
    check_widened(master.gate_proj[e].grad(), reference.gate_proj[e].grad());
    check_widened(master.up_proj[e].grad(), reference.up_proj[e].grad());
    check_widened(master.down_proj[e].grad(), reference.down_proj[e].grad());
  }
}

TEST_CASE("the router's logits keep an f64 weight's precision over f32 rows") {
  Generator gen(12);
  Tensor x = randn({9, 6}, gen, 0.0, 1.0, DType::F32);
  x.set_requires_grad(true);
  const Tensor w = parameter({4, 6}, 13, DType::F64);
  const Tensor upstream = randn({9, 4}, gen, 0.0, 1.0, DType::F64);
  const Tensor logits = ops::moe_router_logits(x, w);
  REQUIRE(logits.dtype() == DType::F64);
  // Reference in f64 from the widened rows: the same products, summed in another order.
  Tensor x_wide = x.detach().to(DType::F64).clone().detach();
  x_wide.set_requires_grad(true);
  Tensor w_ref = w.detach().clone().detach();
  w_ref.set_requires_grad(true);
  const Tensor ref = ops::linear(x_wide, w_ref);
  const std::vector<double> got = logits.to_vector<double>(), want = ref.to_vector<double>();
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
  ops::sum(ops::mul(logits, upstream)).backward();
  ops::sum(ops::mul(ref, upstream)).backward();
  REQUIRE(x.grad().dtype() == DType::F32);
  REQUIRE(w.grad().dtype() == DType::F64);
  const std::vector<float> dx = x.grad().to_vector<float>();
  const std::vector<double> dx_ref = x_wide.grad().to_vector<double>();
  for (size_t i = 0; i < dx.size(); ++i)
    CHECK(dx[i] == static_cast<float>(dx_ref[i]));  // the f64 sum, rounded once
  const std::vector<double> dw = w.grad().to_vector<double>(),
                            dw_ref = w_ref.grad().to_vector<double>();
  for (size_t i = 0; i < dw.size(); ++i) CHECK(dw[i] == doctest::Approx(dw_ref[i]).epsilon(1e-12));

  CHECK_THROWS_WITH_AS(ops::moe_router_logits(x, parameter({4, 5}, 14, DType::F64)),
                       doctest::Contains("expects [E, 6]"), Error);
}

TEST_CASE("RMSNorm reads an f64 master weight as stored and sums its gradient in f64") {
  const int64_t rows = 6, cols = 5;
  const double eps = 1e-6;
  Generator gen(21);
  Tensor x = randn({2, 3, cols}, gen, 0.0, 1.0, DType::F32);
  x.set_requires_grad(true);
  const Tensor w = parameter({cols}, 22, DType::F64);
  const Tensor dy = randn({2, 3, cols}, gen, 0.0, 1.0, DType::F32);

  const Tensor y = ops::rms_norm(x, w, eps);
  REQUIRE(y.dtype() == DType::F32);
  ops::sum(ops::mul(y, dy)).backward();
  REQUIRE(w.grad().dtype() == DType::F64);
  REQUIRE(x.grad().dtype() == DType::F32);

  // The kernel's arithmetic spelled out: 1/rms in f32 from f64 sums of squares, y = w * (x * r)
  // with the f64 weight, rounded once; dweight = f64 sums of dy * x * r. A weight rounded to f32
  // on the way in, or a gradient summed in f32, misses these values.
  const std::vector<float> xv = x.to_vector<float>(), dyv = dy.to_vector<float>(),
                           yv = y.to_vector<float>();
  const std::vector<double> wv = w.to_vector<double>(), dwv = w.grad().to_vector<double>();
  std::vector<double> dw_expected(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < cols; ++j)
      ss += static_cast<double>(xv[r * cols + j]) * xv[r * cols + j];
    const auto inv = static_cast<float>(1.0 / std::sqrt(ss / cols + eps));
    for (int64_t j = 0; j < cols; ++j) {
      CAPTURE(r);
      CAPTURE(j);
      CHECK(yv[r * cols + j] == static_cast<float>(wv[j] * (xv[r * cols + j] * inv)));
      dw_expected[j] += static_cast<double>(dyv[r * cols + j]) * xv[r * cols + j] * inv;
    }
  }
  for (int64_t j = 0; j < cols; ++j) CHECK(dwv[j] == dw_expected[j]);
}

TEST_CASE("the embedding rounds an f64 master table's rows to f32 and sums its gradient in f64") {
  const int64_t vocab = 4, dim = 3;
  const Tensor w = parameter({vocab, dim}, 31, DType::F64);
  const std::vector<int32_t> id_values = {2, 0, 2, 3, 2};
  const Tensor ids = Tensor::from_vector(id_values, Shape{5});
  Generator gen(32);
  const Tensor dy = randn({5, dim}, gen, 0.0, 1.0, DType::F32);

  const Tensor rows = ops::embedding(ids, w, DType::F32);
  REQUIRE(rows.dtype() == DType::F32);
  ops::sum(ops::mul(rows, dy)).backward();
  REQUIRE(w.grad().dtype() == DType::F64);

  const std::vector<double> wv = w.to_vector<double>(), dwv = w.grad().to_vector<double>();
  const std::vector<float> rv = rows.to_vector<float>(), dyv = dy.to_vector<float>();
  std::vector<double> dw_expected(vocab * dim, 0.0);
  for (size_t i = 0; i < id_values.size(); ++i)
    for (int64_t j = 0; j < dim; ++j) {
      CHECK(rv[i * dim + j] == static_cast<float>(wv[id_values[i] * dim + j]));
      dw_expected[id_values[i] * dim + j] += dyv[i * dim + j];
    }
  for (int64_t k = 0; k < vocab * dim; ++k) CHECK(dwv[k] == dw_expected[k]);
}

TEST_CASE("RMSNorm and the embedding take a weight of the rows' dtype or its master dtype only") {
  Generator gen(41);
  const Tensor x64 = randn({2, 4}, gen, 0.0, 1.0, DType::F64);
  CHECK_THROWS_WITH_AS(
      ops::rms_norm(x64, parameter({4}, 42, DType::F32), 1e-6),
      doctest::Contains("rms_norm: weight f32[4] cpu must have the input's dtype or its master"),
      Error);
  const Tensor ids = Tensor::from_vector(std::vector<int32_t>{0, 1}, Shape{2});
  CHECK_THROWS_WITH_AS(ops::embedding(ids, parameter({3, 4}, 43, DType::F32), DType::F64),
                       doctest::Contains("embedding: weight f32[3, 4] cpu must have the rows' "
                                         "dtype F64 or its master dtype"),
                       Error);
}

}  // namespace latte

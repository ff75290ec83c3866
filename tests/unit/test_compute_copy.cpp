// Compute copies of parameters (mixed precision): a parameter's narrower cast is kept and reused
// until the parameter's memory is touched, gradients flow through the kept cast, and AdamW writes
// the copy with its update so the next cast is free.
#include <doctest/doctest.h>

#include <vector>

#include "engine/ops.h"
#include "engine/optim/adamw.h"
#include "kernels/cpu/bf16.h"

namespace latte {

namespace {

Tensor parameter(const std::vector<float>& values) {
  Tensor p = Tensor::from_vector<float>(values, {2, 2});
  p.set_requires_grad(true);
  return p;
}

// `values` rounded to bf16, as float.
std::vector<float> rounded(const std::vector<float>& values) {
  std::vector<float> out;
  for (float v : values) out.push_back(bf16_to_float(float_to_bf16(v)));
  return out;
}

}  // namespace

TEST_CASE("a parameter's bf16 cast is kept until the parameter is written") {
  Tensor p = parameter({1.5f, -2.25f, 3.1f, 0.1f});
  const Tensor first = p.to(DType::BF16);
  CHECK(first.to_vector<float>() == rounded({1.5f, -2.25f, 3.1f, 0.1f}));
  CHECK(p.compute_copy().defined());
  CHECK(p.to(DType::BF16).shares_storage_with(first));  // reused, not cast again

  SUBCASE("copy_ into the parameter") {
    p.copy_(Tensor::from_vector<float>({4.f, 5.f, 6.f, 7.f}, {2, 2}));
    const Tensor again = p.to(DType::BF16);
    CHECK_FALSE(again.shares_storage_with(first));
    CHECK(again.to_vector<float>() == std::vector<float>{4.f, 5.f, 6.f, 7.f});
  }
  SUBCASE("a write through a fresh data pointer") {
    p.data<float>()[2] = -8.f;
    CHECK(p.to(DType::BF16).to_vector<float>()[2] == -8.f);
  }
  SUBCASE("fill_") {
    p.fill_(0.5);
    CHECK(p.to(DType::BF16).to_vector<float>() == std::vector<float>(4, 0.5f));
  }
}

TEST_CASE("only parameters covering their storage keep casts, and only narrowing ones") {
  const Tensor plain = Tensor::from_vector<float>({1.f, 2.f, 3.f, 4.f}, {2, 2});
  CHECK_FALSE(plain.to(DType::BF16).shares_storage_with(plain.to(DType::BF16)));

  Tensor p = parameter({1.f, 2.f, 3.f, 4.f});
  CHECK_FALSE(p.to(DType::F64).shares_storage_with(p.to(DType::F64)));  // widening
  CHECK_FALSE(p.compute_copy().defined());
  const Tensor row = p.narrow(0, 1, 1);  // a view: not a leaf, part of the storage
  CHECK_FALSE(row.to(DType::BF16).shares_storage_with(row.to(DType::BF16)));
  CHECK_FALSE(p.compute_copy().defined());
}

TEST_CASE("gradients reach the parameter through its kept cast, once per use") {
  Tensor p = parameter({1.f, -2.f, 0.5f, 4.f});
  const Tensor w = Tensor::from_vector<float>({1.f, 2.f, 3.f, 4.f}, {2, 2});
  for (int pass = 0; pass < 2; ++pass)
    ops::sum(ops::mul(p.to(DType::BF16).to(DType::F32), w)).backward();
  CHECK(p.grad().dtype() == DType::F32);
  CHECK(p.grad().to_vector<float>() == std::vector<float>{2.f, 4.f, 6.f, 8.f});
}

TEST_CASE("an AdamW step writes the kept cast with the update") {
  Tensor p = parameter({1.f, -2.f, 0.5f, 4.f});
  const Tensor before = p.to(DType::BF16);
  const std::vector<float> before_values = before.to_vector<float>();
  p.set_grad(Tensor::from_vector<float>({0.3f, -0.1f, 0.f, 2.f}, {2, 2}));
  AdamW opt({ParamGroup{{{"p", p}}, 0.1}}, AdamWOptions{});
  opt.step(0.05);
  const Tensor after = p.to(DType::BF16);
  CHECK(after.shares_storage_with(before));  // current without another cast
  CHECK(after.to_vector<float>() == rounded(p.to_vector<float>()));
  CHECK(after.to_vector<float>() != before_values);
}

}  // namespace latte

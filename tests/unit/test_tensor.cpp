// Tensor storage, views, copies, dtype conversion and their error messages.
#include <doctest/doctest.h>

#include "engine/allocator.h"
#include "engine/ops.h"

using namespace latte;

TEST_CASE("views share storage, contiguous copies only when needed") {
  Tensor a = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor t = a.transpose(0, 1);
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.shares_storage_with(a));
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  Tensor c = t.contiguous();
  CHECK_FALSE(c.shares_storage_with(a));
  CHECK(a.contiguous().shares_storage_with(a));
  CHECK(a.reshape({3, 2}).shares_storage_with(a));
  CHECK_FALSE(t.reshape({6}).shares_storage_with(a));  // needs a copy
  CHECK(t.reshape({6}).to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  Tensor n = a.narrow(1, 1, 2);
  CHECK(n.to_vector<float>() == std::vector<float>{1, 2, 4, 5});
  CHECK(n.shares_storage_with(a));
  CHECK(a.select(0, 1).to_vector<float>() == std::vector<float>{3, 4, 5});
  // A view of a narrowed tensor that keeps rows intact needs no copy.
  Tensor rows = Tensor::zeros({4, 6}).narrow(0, 1, 2);
  CHECK(rows.view({2, 2, 3}).shares_storage_with(rows));
  CHECK(a.permute({1, 0}).to_vector<float>() == t.to_vector<float>());
}

TEST_CASE("dtype conversion round trips and bf16 rounds to nearest even") {
  Tensor a = Tensor::from_vector(std::vector<double>{1.0, -2.5, 1048576.0}, {3});
  CHECK(a.to(DType::F32).to(DType::F64).to_vector<double>() ==
        std::vector<double>{1.0, -2.5, 1048576.0});
  CHECK(Tensor::from_vector(std::vector<float>{1.0f + 1.0f / 256}, {1}).to(DType::BF16).item() ==
        1.0);  // halfway between two bf16 values: ties to even (1.0)
  CHECK(Tensor::from_vector(std::vector<float>{1.0f + 3.0f / 256}, {1}).to(DType::BF16).item() ==
        1.0 + 1.0 / 64);
  CHECK(Tensor::from_vector(std::vector<int32_t>{7, -3}, {2}).to(DType::I64).to_vector<int64_t>() ==
        std::vector<int64_t>{7, -3});
}

TEST_CASE("misuse of views and shapes names the op and the shapes") {
  Tensor a = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(a.view({4, 2}),
                       doctest::Contains("view: f32[2, 3] cpu (6 elements) cannot become [4, 2]"),
                       Error);
  CHECK_THROWS_WITH_AS(a.transpose(0, 1).view({6}), doctest::Contains("without a copy"), Error);
  CHECK_THROWS_WITH_AS(a.narrow(1, 2, 2), doctest::Contains("narrow: range [2, 4) out of bounds"),
                       Error);
  CHECK_THROWS_WITH_AS(a.transpose(0, 2), doctest::Contains("dimension 2 out of range"), Error);
  CHECK_THROWS_WITH_AS(a.squeeze(0),
                       doctest::Contains("squeeze: dimension 0 of f32[2, 3] cpu is not 1"), Error);
  CHECK_THROWS_WITH_AS(a.data<double>(), doctest::Contains("requested F64 pointer"), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({1, 1, 1, 1, 1, 1, 1}), doctest::Contains("at most 6"), Error);
  CHECK_THROWS_WITH_AS(a.item(), doctest::Contains("one-element"), Error);
  CHECK_THROWS_WITH_AS(a.to(Device::CUDA), doctest::Contains("cuda"), Error);
  CHECK(a.view({3, -1}).shape() == Shape{3, 2});
}

TEST_CASE("the allocator tracks current and peak bytes") {
  Allocator& cpu = allocator_for(Device::CPU);
  const size_t before = cpu.current_bytes();
  cpu.reset_peak();
  {
    Tensor big = Tensor::empty({1000}, DType::F64);
    CHECK(cpu.current_bytes() == before + 8000);
    { Tensor more = Tensor::empty({500}, DType::F32); }
    CHECK(cpu.peak_bytes() == before + 10000);
    Tensor view = big.narrow(0, 0, 10);  // views allocate nothing
    CHECK(cpu.current_bytes() == before + 8000);
  }
  CHECK(cpu.current_bytes() == before);
  CHECK(cpu.peak_bytes() == before + 10000);
}

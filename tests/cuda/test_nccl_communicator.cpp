// The NCCL communicator with one rank (MPI started as a singleton, no launcher needed): the
// NCCL communicator's creation through MPI on the first CUDA reduction, one grouped ncclAllReduce
// of f32 and bf16 device tensors next to a CPU tensor in the same call (the mean over one rank
// is the value itself: every element must come back unchanged), host sums, and the refusals.
// Compiled when latte is built with NCCL (and so with MPI).
#ifdef LATTE_WITH_NCCL

#include <doctest/doctest.h>

#include <vector>

#include "engine/cuda/cuda_runtime.h"
#include "engine/cuda/nccl_communicator.h"
#include "engine/dist/mpi_session.h"
#include "engine/tensor.h"
#include "kernels/cpu/bf16.h"

namespace latte::test {

TEST_CASE("nccl communicator with one rank: creation over MPI and a grouped device allreduce") {
  const MpiSession mpi;
  const auto comm = cuda::make_nccl_communicator();
  REQUIRE(comm->world_size() == 1);
  REQUIRE(comm->rank() == 0);

  // Odd sizes: a count in bytes instead of elements, or the wrong element type, shows.
  std::vector<float> f32_values(100003), bf16_values(999);
  for (size_t i = 0; i < f32_values.size(); ++i) f32_values[i] = 0.25f * float(i % 1000) - 7.f;
  for (size_t i = 0; i < bf16_values.size(); ++i)
    bf16_values[i] = bf16_to_float(float_to_bf16(0.5f * float(i) - 100.f));
  const std::vector<double> host_values = {1.5, -2.25, 3.0};
  const Tensor f32 = Tensor::from_vector(f32_values, {100003}).to(Device::CUDA);
  const Tensor bf16 = Tensor::from_vector(bf16_values, {999}, DType::BF16).to(Device::CUDA);
  const Tensor host = Tensor::from_vector(host_values, {3});
  comm->allreduce_mean({f32, bf16, host});
  cuda::synchronize();
  CHECK(f32.to_vector<float>() == f32_values);
  CHECK(bf16.to_vector<float>() == bf16_values);
  CHECK(host.to_vector<double>() == host_values);
  comm->allreduce_mean({f32});  // the NCCL communicator, created once, serves again
  CHECK(f32.to_vector<float>() == f32_values);

  std::vector<double> sums = {0.5, -1};
  std::vector<int64_t> counts = {int64_t(1) << 40, 3};
  comm->allreduce_sum(sums);
  comm->allreduce_sum(counts);
  CHECK(sums == std::vector<double>{0.5, -1});
  CHECK(counts == std::vector<int64_t>{int64_t(1) << 40, 3});

  CHECK_THROWS_WITH_AS(comm->allreduce_mean({Tensor::zeros({4}, DType::F64, Device::CUDA)}),
                       doctest::Contains("expects f32 or bf16"), Error);
  CHECK_THROWS_WITH_AS(
      comm->allreduce_mean({Tensor::zeros({2, 3}, DType::F32, Device::CUDA).transpose(0, 1)}),
      doctest::Contains("not contiguous"), Error);
}

}  // namespace latte::test

#endif  // LATTE_WITH_NCCL

// The MPI communicator across the processes of the job (any number >= 2): ranks, sums of double
// and int64 vectors, means of f32 and f64 CPU tensors in one call, its refusals (raised before
// any transfer, on every rank alike), and average_gradients over MPI with a parameter that only
// some ranks reached. Values are small integers so every sum and mean is exact.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/dist/average_gradients.h"
#include "engine/dist/distributed.h"
#include "engine/dist/launch_environment.h"
#include "engine/dist/mpi_session.h"
#include "engine/tensor.h"
#include "tests/support/error_text.h"

namespace latte {

TEST_CASE("the communicator of a launched process spans the job: distinct ranks, one world") {
  const auto comm = make_communicator();
  const LaunchEnvironment env = launch_environment();
  REQUIRE(env.world_size.has_value());
  CHECK(comm->world_size() == *env.world_size);
  CHECK(comm->world_size() >= 2);
  CHECK(comm->rank() == env.rank);
  CHECK(comm->is_root() == (env.rank == 0));
  std::vector<int64_t> seen(static_cast<size_t>(comm->world_size()), 0);
  seen[static_cast<size_t>(comm->rank())] = 1;
  comm->allreduce_sum(seen);
  CHECK(seen == std::vector<int64_t>(seen.size(), 1));
}

TEST_CASE("allreduce_sum adds double and int64 vectors element-wise on every rank") {
  const auto comm = make_communicator();
  const int64_t r = comm->rank(), n = comm->world_size();
  const int64_t rank_sum = n * (n - 1) / 2;
  std::vector<double> d = {static_cast<double>(r), 0.25, -1.5 * static_cast<double>(r + 1)};
  comm->allreduce_sum(d);
  CHECK(d == std::vector<double>{static_cast<double>(rank_sum), 0.25 * static_cast<double>(n),
                                 -1.5 * static_cast<double>(rank_sum + n)});
  // Beyond 32 bits: a reduction through a narrower type would lose these.
  const int64_t big = int64_t(1) << 40;
  std::vector<int64_t> i = {big * (r + 1), -r, 7};
  comm->allreduce_sum(i);
  CHECK(i == std::vector<int64_t>{big * (rank_sum + n), -rank_sum, 7 * n});
  std::vector<double> empty;
  comm->allreduce_sum(empty);
  CHECK(empty.empty());
}

TEST_CASE("allreduce_mean averages f32 and f64 CPU tensors in place, all in one call") {
  const auto comm = make_communicator();
  const int64_t r = comm->rank(), n = comm->world_size();
  // Element k of rank r holds (k + 1) * n * (r + 1): the mean over ranks is (k + 1) * n * (n + 1)
  // / 2, an integer, exact in both types.
  const int64_t big = 100003;  // past the OpenMP threshold of the division
  Tensor f32 = Tensor::empty({big});
  Tensor f64 = Tensor::empty({3, 2}, DType::F64);
  for (int64_t k = 0; k < big; ++k)
    f32.data<float>()[k] = static_cast<float>((k % 64 + 1) * n * (r + 1));
  for (int64_t k = 0; k < 6; ++k)
    f64.data<double>()[k] = static_cast<double>((k + 1) * n * (r + 1));
  comm->allreduce_mean({f32, f64});
  bool all_f32 = true;
  for (int64_t k = 0; k < big; ++k)
    all_f32 = all_f32 && f32.data<float>()[k] == static_cast<float>((k % 64 + 1) * n * (n + 1) / 2);
  CHECK(all_f32);
  for (int64_t k = 0; k < 6; ++k)
    CHECK(f64.data<double>()[k] == static_cast<double>((k + 1) * n * (n + 1) / 2));
  comm->allreduce_mean({});
}

TEST_CASE("allreduce_mean refuses tensors it cannot reduce, before any transfer") {
  const auto comm = make_communicator();
  const Tensor good = Tensor::ones({4});
  const Tensor transposed = Tensor::zeros({2, 3}).transpose(0, 1);
  CHECK_CONTAINS(test::error_of([&] {
                   comm->allreduce_mean({good, transposed});
                 }),
                 "not contiguous");
  CHECK_CONTAINS(test::error_of([&] {
                   comm->allreduce_mean({Tensor::zeros({2}, DType::BF16), good});
                 }),
                 "expects f32 or f64");
  CHECK_CONTAINS(test::error_of([&] { comm->allreduce_mean({Tensor::zeros({2}, DType::I32)}); }),
                 "expects f32 or f64");
  CHECK(good.to_vector<float>() == std::vector<float>(4, 1.f));  // untouched
}

TEST_CASE("average_gradients over MPI: a parameter only some ranks reached counts 0 elsewhere") {
  const auto comm = make_communicator();
  const int64_t r = comm->rank(), n = comm->world_size();
  auto parameter = [] {
    Tensor p = Tensor::zeros({2});
    p.set_requires_grad(true);
    return p;
  };
  // everywhere: rank r holds {r, 2r}; even ranks only: {1, 1}; nowhere: undefined.
  std::vector<Tensor> params = {parameter(), parameter(), parameter()};
  params[0].set_grad(Tensor::from_vector(
      std::vector<float>{static_cast<float>(r), static_cast<float>(2 * r)}, {2}));
  if (r % 2 == 0) params[1].set_grad(Tensor::ones({2}));
  average_gradients(params, *comm);
  const float rank_mean = static_cast<float>(n - 1) / 2;
  const float even_share = static_cast<float>((n + 1) / 2) / static_cast<float>(n);
  CHECK(params[0].grad().to_vector<float>() == std::vector<float>{rank_mean, 2 * rank_mean});
  REQUIRE(params[1].grad().defined());
  CHECK(params[1].grad().to_vector<float>() == std::vector<float>{even_share, even_share});
  CHECK_FALSE(params[2].grad().defined());
}

TEST_CASE("the MPI session reports the job and the node-local rank") {
  CHECK(MpiSession::active());
  CHECK(MpiSession::world_size() == *launch_environment().world_size);
  CHECK(MpiSession::rank() == launch_environment().rank);
  const std::optional<int> local = launch_environment().local_rank;
  REQUIRE(local.has_value());  // Open MPI and MPICH launchers set it
  CHECK(MpiSession::node_local_rank() == *local);
}

}  // namespace latte

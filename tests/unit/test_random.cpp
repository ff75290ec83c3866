// Counter-based random numbers: deterministic, independent of thread count, right moments.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>

#include "engine/random.h"

using namespace latte;

TEST_CASE("randn is deterministic per seed, state-resumable and thread-count independent") {
  Generator a(42), b(42);
  const auto x = randn({100000}, a, 0.0, 1.0, DType::F64).to_vector<double>();
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto y = randn({100000}, b, 0.0, 1.0, DType::F64).to_vector<double>();
  omp_set_num_threads(threads);
  CHECK(x == y);
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= x.size();
  for (double v : x) var += (v - mean) * (v - mean);
  var /= x.size();
  CHECK(std::abs(mean) < 0.02);  // sd of the mean: 1/sqrt(1e5) = 0.003
  CHECK(std::abs(var - 1) < 0.03);
  // Resuming from a saved state continues the same stream.
  Generator c(42);
  c.set_state(a.seed(), a.offset());
  CHECK(randn({5}, a, 0, 1, DType::F64).to_vector<double>() ==
        randn({5}, c, 0, 1, DType::F64).to_vector<double>());
}

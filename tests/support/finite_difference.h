// Finite-difference helpers shared by gradient tests: central differences of a scalar function
// of a flat double vector, and error measures that name the worst element.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace latte::test {

// d loss / d x[i] by central differences (loss evaluated with x[i] +- eps, x restored after).
inline std::vector<double> numeric_gradient(const std::function<double()>& loss,
                                            std::vector<double>& x, double eps = 1e-6) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + eps;
    const double plus = loss();
    x[i] = saved - eps;
    const double minus = loss();
    x[i] = saved;
    grad[i] = (plus - minus) / (2 * eps);
  }
  return grad;
}

// max_i |a_i - b_i| / max(max_j |b_j|, floor): error relative to the reference's scale, so
// that elements near zero do not blow the measure up.
inline double max_relative_error(const std::vector<double>& actual,
                                 const std::vector<double>& expected, double floor = 1e-12) {
  double scale = floor;
  for (double v : expected) scale = std::max(scale, std::abs(v));
  double worst = 0;
  for (size_t i = 0; i < actual.size() && i < expected.size(); ++i)
    worst = std::max(worst, std::abs(actual[i] - expected[i]) / scale);
  if (actual.size() != expected.size()) return INFINITY;
  return worst;
}

// Uniform(-1, 1) values from a seeded generator: deterministic test inputs.
inline std::vector<double> random_vector(size_t n, unsigned seed, double lo = -1, double hi = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace latte::test

#include "cuda/cuda_test_support.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace latte::test {

std::vector<float> uniform(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

std::vector<int32_t> uniform_ints(std::mt19937& rng, size_t n, int32_t lo, int32_t hi) {
  std::uniform_int_distribution<int32_t> dist(lo, hi);
  std::vector<int32_t> x(n);
  for (int32_t& v : x) v = dist(rng);
  return x;
}

std::vector<bf16> to_bf16(const std::vector<float>& x) {
  std::vector<bf16> out(x.size());
  std::transform(x.begin(), x.end(), out.begin(), float_to_bf16);
  return out;
}

std::vector<float> to_float(const std::vector<bf16>& x) {
  std::vector<float> out(x.size());
  std::transform(x.begin(), x.end(), out.begin(), bf16_to_float);
  return out;
}

std::vector<float> round_bf16(const std::vector<float>& x) {
  return to_float(to_bf16(x));
}

double max_abs(const std::vector<float>& x) {
  double m = 0;
  for (float v : x) m = std::max(m, std::abs(static_cast<double>(v)));
  return m;
}

namespace {

template <typename T>
std::string compare(const std::vector<T>& got, const std::vector<T>& want, double rtol,
                    double atol) {
  std::ostringstream out;
  if (got.size() != want.size()) {
    out << got.size() << " elements, expected " << want.size();
    return out.str();
  }
  double worst_share = -1;  // the failing element's error over its allowed error
  size_t worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    if (g == w) continue;  // also equal infinities
    const double allowed = atol + rtol * std::abs(w);
    const double err = std::abs(g - w);
    if (err <= allowed) continue;  // false for NaN
    const double share = std::isnan(err) ? INFINITY : err / std::max(allowed, 1e-300);
    if (share > worst_share) {
      worst_share = share;
      worst = i;
    }
  }
  if (worst_share < 0) return "";
  out.precision(9);
  out << "element " << worst << " is " << static_cast<double>(got[worst]) << ", expected "
      << static_cast<double>(want[worst]) << " (allowed error "
      << atol + rtol * std::abs(static_cast<double>(want[worst])) << ")";
  return out.str();
}

template <typename T>
std::string compare_exact(const std::vector<T>& got, const std::vector<T>& want) {
  std::ostringstream out;
  if (got.size() != want.size()) {
    out << got.size() << " elements, expected " << want.size();
    return out.str();
  }
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i]) {
      out << "element " << i << " is " << got[i] << ", expected " << want[i];
      return out.str();
    }
  return "";
}

}  // namespace

std::string mismatch_report(const std::vector<float>& got, const std::vector<float>& want,
                            double rtol, double atol) {
  return compare(got, want, rtol, atol);
}
std::string mismatch_report(const std::vector<double>& got, const std::vector<double>& want,
                            double rtol, double atol) {
  return compare(got, want, rtol, atol);
}
std::string mismatch_report(const std::vector<int64_t>& got, const std::vector<int64_t>& want) {
  return compare_exact(got, want);
}
std::string mismatch_report(const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  return compare_exact(got, want);
}

std::string tensor_mismatch(const Tensor& gpu, const Tensor& cpu, double rtol, double atol) {
  if (gpu.shape() != cpu.shape())
    return "shape " + gpu.shape().str() + " on the GPU, " + cpu.shape().str() + " on the CPU";
  return mismatch_report(gpu.to_vector<double>(), cpu.to_vector<double>(), rtol, atol);
}

Tensor bf16_exact(const Shape& shape, Generator& gen) {
  return rand_uniform(shape, gen, -1.0, 1.0, DType::F32).to(DType::BF16).to(DType::F32);
}

Tensor leaf(const Tensor& t, DType dtype, Device device) {
  Tensor out = t.detach().to(dtype).to(device).contiguous();
  out.set_requires_grad(true);
  return out;
}

}  // namespace latte::test

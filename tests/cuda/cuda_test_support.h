// Helpers of the CUDA tests: a device buffer that uploads and downloads host vectors, random
// inputs, bf16 rounding of host data (so the CPU twin sees exactly what the GPU reads), and the
// element-wise comparison that every kernel case reports through.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"
#include "kernels/cpu/bf16.h"
#include "kernels/cuda/cuda_check.h"

namespace latte::test {

// n elements of T in device memory, freed on destruction.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n_ > 0) LATTE_CUDA_CHECK(cudaMalloc(&ptr_, n_ * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() {
    if (ptr_) (void)cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return static_cast<T*>(ptr_); }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    LATTE_CHECK(host.size() == n_) << "DeviceBuffer: uploading " << host.size() << " into " << n_;
    if (n_ > 0) LATTE_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyDefault));
  }
  // Waits for all device work, then copies elements [from, size) of the buffer to the host (an
  // operand that starts `from` elements in: one element in is off the 16-byte alignment of the
  // allocation).
  std::vector<T> download(size_t from = 0) const {
    LATTE_CUDA_CHECK(cudaDeviceSynchronize());
    LATTE_CHECK(from <= n_) << "DeviceBuffer: downloading from " << from << " of " << n_;
    std::vector<T> host(n_ - from);
    if (!host.empty())
      LATTE_CUDA_CHECK(
          cudaMemcpy(host.data(), get() + from, host.size() * sizeof(T), cudaMemcpyDefault));
    return host;
  }

 private:
  void* ptr_ = nullptr;
  size_t n_ = 0;
};

// Uniform(lo, hi) values.
std::vector<float> uniform(std::mt19937& rng, size_t n, float lo = -1.f, float hi = 1.f);
// Uniform integers in [lo, hi].
std::vector<int32_t> uniform_ints(std::mt19937& rng, size_t n, int32_t lo, int32_t hi);

std::vector<bf16> to_bf16(const std::vector<float>& x);
std::vector<float> to_float(const std::vector<bf16>& x);
// x rounded to the nearest bf16 (as float): the values a bf16 kernel actually reads.
std::vector<float> round_bf16(const std::vector<float>& x);

// Whether a kernel's element type T (float or bf16) is bf16, and its name in case names.
template <typename T>
constexpr bool is_bf16() {
  return !std::is_same_v<T, float>;
}
template <typename T>
std::string type_name() {
  return is_bf16<T>() ? "bf16" : "f32";
}

// Host data in a kernel's element type T (float or bf16) and back to float.
template <typename T>
std::vector<T> as_type(const std::vector<float>& x) {
  if constexpr (std::is_same_v<T, float>)
    return x;
  else
    return to_bf16(x);
}
template <typename T>
std::vector<float> as_float(const std::vector<T>& x) {
  if constexpr (std::is_same_v<T, float>)
    return x;
  else
    return to_float(x);
}

// Uniform(lo, hi) inputs of a T kernel as float: rounded to bf16 when T is bf16, so that the CPU
// twin reads exactly the values the kernel reads.
template <typename T>
std::vector<float> random_input(std::mt19937& rng, size_t n, float lo = -1.f, float hi = 1.f) {
  std::vector<float> x = uniform(rng, n, lo, hi);
  if constexpr (std::is_same_v<T, float>)
    return x;
  else
    return round_bf16(x);
}

// One rounding to bf16 (8 significant bits) is off by at most 2^-8 = 3.9e-3 relative.
inline constexpr double kBf16Rounding = 4e-3;

// The largest |x_i|.
double max_abs(const std::vector<float>& x);

// "" when got matches want element by element, |got - want| <= atol + rtol * |want| (equal
// infinities match, NaN never does); else a message naming the worst element (by its share of the
// allowed error), its value, the expected one and the allowed error. Callers state the reason
// for their tolerances where they choose them.
std::string mismatch_report(const std::vector<float>& got, const std::vector<float>& want,
                            double rtol, double atol);
std::string mismatch_report(const std::vector<double>& got, const std::vector<double>& want,
                            double rtol, double atol);
// mismatch_report of a GPU tensor against its CPU twin (any dtypes, read as double), with a
// message about the shapes when they differ.
std::string tensor_mismatch(const Tensor& gpu, const Tensor& cpu, double rtol, double atol);
// Uniform(-1, 1) f32 values that bf16 holds exactly, so both devices read the same numbers.
Tensor bf16_exact(const Shape& shape, Generator& gen);
// A leaf copy of `t` in `dtype` on `device` that records its gradient.
Tensor leaf(const Tensor& t, DType dtype, Device device);

// Exact equality for integer outputs.
std::string mismatch_report(const std::vector<int64_t>& got, const std::vector<int64_t>& want);
std::string mismatch_report(const std::vector<int32_t>& got, const std::vector<int32_t>& want);

}  // namespace latte::test

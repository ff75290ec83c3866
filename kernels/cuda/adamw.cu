#include "kernels/cuda/adamw.cuh"

#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;
constexpr int64_t kChunk = 4096;

// AdamWTensor with device element types.
template <typename G>
struct DeviceAdamWTensor {
  float* param;
  const G* grad;
  float* m;
  float* v;
  int64_t n;
  __nv_bfloat16* compute_copy;
};

template <typename G>
struct AdamWLaunch {
  DeviceAdamWTensor<G> tensors[kAdamWTensorsPerLaunch];
  int64_t chunk_start[kAdamWTensorsPerLaunch + 1];  // first chunk of each tensor, then the total
  int count;
  float b1, b2, lr, wd, eps, grad_scale, inv_c1, inv_sqrt_c2;
};

template <typename G>
__global__ void __launch_bounds__(kThreads) adamw_kernel(const AdamWLaunch<G> a) {
  int t = 0;
  for (int64_t chunk = blockIdx.x; chunk < a.chunk_start[a.count]; chunk += gridDim.x) {
    while (a.chunk_start[t + 1] <= chunk) ++t;  // chunks only grow along the loop
    const DeviceAdamWTensor<G>& x = a.tensors[t];
    const int64_t begin = (chunk - a.chunk_start[t]) * kChunk;
    const int64_t end = min(x.n, begin + kChunk);
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const float g = to_float(x.grad[i]) * a.grad_scale;
      const float m = a.b1 * x.m[i] + (1.f - a.b1) * g;
      const float v = a.b2 * x.v[i] + (1.f - a.b2) * g * g;
      x.m[i] = m;
      x.v[i] = v;
      const float update = (m * a.inv_c1) / (sqrtf(v) * a.inv_sqrt_c2 + a.eps);
      const float p = x.param[i] - a.lr * (update + a.wd * x.param[i]);
      x.param[i] = p;
      if (x.compute_copy) x.compute_copy[i] = __float2bfloat16_rn(p);
    }
  }
}

}  // namespace

template <typename G>
void adamw_update(const AdamWTensor<G>* tensors, int64_t count, const cpu::AdamWStep& s,
                  cudaStream_t stream) {
  using D = DeviceType<G>;
  AdamWLaunch<D> a{};
  const double c1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
  const double c2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
  a.b1 = static_cast<float>(s.beta1);
  a.b2 = static_cast<float>(s.beta2);
  a.lr = static_cast<float>(s.lr);
  a.wd = static_cast<float>(s.weight_decay);
  a.eps = static_cast<float>(s.eps);
  a.grad_scale = static_cast<float>(s.grad_scale);
  a.inv_c1 = static_cast<float>(1.0 / c1);
  a.inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(c2));
  for (int64_t first = 0; first < count; first += kAdamWTensorsPerLaunch) {
    a.count = static_cast<int>(std::min<int64_t>(kAdamWTensorsPerLaunch, count - first));
    a.chunk_start[0] = 0;
    for (int i = 0; i < a.count; ++i) {
      const AdamWTensor<G>& x = tensors[first + i];
      a.tensors[i] = {x.param, device_ptr(x.grad), x.m, x.v, x.n, device_ptr(x.compute_copy)};
      a.chunk_start[i + 1] = a.chunk_start[i] + ceil_div(x.n, kChunk);
    }
    const int64_t chunks = a.chunk_start[a.count];
    if (chunks == 0) continue;
    adamw_kernel<<<static_cast<unsigned>(std::min<int64_t>(chunks, 65535)), kThreads, 0, stream>>>(
        a);
    LATTE_CUDA_CHECK_LAUNCH();
  }
}

template void adamw_update<float>(const AdamWTensor<float>*, int64_t, const cpu::AdamWStep&,
                                  cudaStream_t);
template void adamw_update<latte::bf16>(const AdamWTensor<latte::bf16>*, int64_t,
                                        const cpu::AdamWStep&, cudaStream_t);

}  // namespace latte::kernels::cuda

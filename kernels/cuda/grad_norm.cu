#include "kernels/cuda/grad_norm.cuh"

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;
constexpr int64_t kChunk = 2048;

template <typename G>
struct SumSquaresLaunch {
  const G* data[kGradNormTensorsPerLaunch];
  int64_t n[kGradNormTensorsPerLaunch];
  int64_t chunk_start[kGradNormTensorsPerLaunch + 1];
  int count;
  bool accumulate;  // add to the partials instead of overwriting them
};

// Each thread reads groups of N elements (one 16-byte load when N > 1: every tensor of the launch
// starts 16-byte aligned, and chunks start at multiples of kChunk), then single elements for the
// chunk's tail.
template <typename G, int N>
__global__ void __launch_bounds__(kThreads)
    sum_squares_kernel(const SumSquaresLaunch<G> a, double* partial) {
  __shared__ double scratch[kWarp];
  double sum = 0;
  int t = 0;
  for (int64_t chunk = blockIdx.x; chunk < a.chunk_start[a.count]; chunk += gridDim.x) {
    while (a.chunk_start[t + 1] <= chunk) ++t;
    const G* data = a.data[t];
    const int64_t begin = (chunk - a.chunk_start[t]) * kChunk;
    const int64_t end = min(a.n[t], begin + kChunk);
    const int64_t groups_end = begin + (end - begin) / N * N;
    for (int64_t i = begin + threadIdx.x * N; i < groups_end; i += blockDim.x * N) {
      const Vec<G, N> group = load_vec<N>(data + i);
#pragma unroll
      for (int e = 0; e < N; ++e) {
        const double g = to_float(group.v[e]);
        sum += g * g;
      }
    }
    for (int64_t i = groups_end + threadIdx.x; i < end; i += blockDim.x) {
      const double g = to_float(data[i]);
      sum += g * g;
    }
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = a.accumulate ? partial[blockIdx.x] + sum : sum;
}

__global__ void __launch_bounds__(kGradNormPartials)
    sum_partials_kernel(const double* partial, double* out) {
  __shared__ double scratch[kWarp];
  const double total = block_sum(partial[threadIdx.x], scratch);
  if (threadIdx.x == 0) *out = total;
}

}  // namespace

template <typename G>
void global_sum_squares(const GradTensor<G>* tensors, int64_t count, double* workspace, double* out,
                        cudaStream_t stream) {
  using D = DeviceType<G>;
  SumSquaresLaunch<D> a{};
  // Always at least one launch, so an empty list writes zeros.
  for (int64_t first = 0; first == 0 || first < count; first += kGradNormTensorsPerLaunch) {
    a.count = static_cast<int>(std::min<int64_t>(kGradNormTensorsPerLaunch, count - first));
    a.accumulate = first > 0;
    a.chunk_start[0] = 0;
    bool aligned = true;
    for (int i = 0; i < a.count; ++i) {
      a.data[i] = device_ptr(tensors[first + i].data);
      a.n[i] = tensors[first + i].n;
      a.chunk_start[i + 1] = a.chunk_start[i] + ceil_div(a.n[i], kChunk);
      aligned = aligned && vector_aligned(a.data[i]);
    }
    if (aligned)
      sum_squares_kernel<D, kPackWidth<D>>
          <<<kGradNormPartials, kThreads, 0, stream>>>(a, workspace);
    else
      sum_squares_kernel<D, 1><<<kGradNormPartials, kThreads, 0, stream>>>(a, workspace);
    LATTE_CUDA_CHECK_LAUNCH();
  }
  sum_partials_kernel<<<1, kGradNormPartials, 0, stream>>>(workspace, out);
  LATTE_CUDA_CHECK_LAUNCH();
}

template void global_sum_squares<float>(const GradTensor<float>*, int64_t, double*, double*,
                                        cudaStream_t);
template void global_sum_squares<latte::bf16>(const GradTensor<latte::bf16>*, int64_t, double*,
                                              double*, cudaStream_t);

}  // namespace latte::kernels::cuda

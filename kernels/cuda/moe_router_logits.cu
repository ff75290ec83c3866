#include "kernels/cuda/moe_router_logits.cuh"

#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256, kWarps = kThreads / kWarp;
constexpr int kRowsPerBlock = 64;  // forward and dx: 8 rows per warp
constexpr int kDwRows = 128;       // rows per block of the weight gradient's partial sums

// Stages the weight [E, d] in shared memory, then calls row(n) for each of the block's
// kRowsPerBlock rows that falls to this warp (a warp per row).
template <class Row>
__device__ __forceinline__ void for_each_warp_row(float* staged, const float* w, int count,
                                                  int64_t n_tokens, Row&& row) {
  for (int i = threadIdx.x; i < count; i += blockDim.x) staged[i] = w[i];
  __syncthreads();
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock;
  const int64_t end = min(first + kRowsPerBlock, n_tokens);
  for (int64_t n = first + threadIdx.x / kWarp; n < end; n += kWarps) row(n);
}

// Lane l's groups of V elements of a row: columns l V, (l + 32) V, ...
template <int V, typename X>
__device__ __forceinline__ void load_group(const X* p, float (&out)[V]) {
  if constexpr (V == 1) {
    out[0] = to_float(p[0]);
  } else {
    const Vec<X, V> g = load_vec<V>(p);
#pragma unroll
    for (int v = 0; v < V; ++v) out[v] = to_float(g.v[v]);
  }
}

template <typename X, int kE, int V>
__global__ void __launch_bounds__(kThreads)
    router_logits_kernel(const X* __restrict__ x, const float* __restrict__ w, int64_t n_tokens,
                         int dim, int n_experts, float* __restrict__ logits) {
  extern __shared__ float staged[];
  const int lane = threadIdx.x % kWarp;
  for_each_warp_row(staged, w, n_experts * dim, n_tokens, [&](int64_t n) {
    float acc[kE] = {};
    for (int j = lane * V; j < dim; j += kWarp * V) {
      float xv[V];
      load_group<V>(x + n * dim + j, xv);
#pragma unroll
      for (int e = 0; e < kE; ++e)
        if (e < n_experts)
#pragma unroll
          for (int v = 0; v < V; ++v) acc[e] += xv[v] * staged[e * dim + j + v];
    }
    float mine = 0.f;
#pragma unroll
    for (int e = 0; e < kE; ++e) {
      const float total = warp_sum(acc[e]);
      if (lane == e) mine = total;
    }
    if (lane < n_experts) logits[n * n_experts + lane] = mine;
  });
}

template <typename X, int kE, int V>
__global__ void __launch_bounds__(kThreads)
    router_logits_dx_kernel(const float* __restrict__ dlogits, const float* __restrict__ w,
                            int64_t n_tokens, int dim, int n_experts, X* __restrict__ dx) {
  extern __shared__ float staged[];
  const int lane = threadIdx.x % kWarp;
  for_each_warp_row(staged, w, n_experts * dim, n_tokens, [&](int64_t n) {
    float dl[kE];
#pragma unroll
    for (int e = 0; e < kE; ++e) dl[e] = e < n_experts ? dlogits[n * n_experts + e] : 0.f;
    for (int j = lane * V; j < dim; j += kWarp * V) {
      Vec<X, V> out;
#pragma unroll
      for (int v = 0; v < V; ++v) {
        float sum = 0.f;
#pragma unroll
        for (int e = 0; e < kE; ++e)
          if (e < n_experts) sum += dl[e] * staged[e * dim + j + v];
        out.v[v] = from_float<X>(sum);
      }
      store_vec<V>(dx + n * dim + j, out);
    }
  });
}

// partial[b, e, j] = sum over the rows of block b, in order, of dlogits[n, e] x[n, j].
template <typename X, int kE>
__global__ void __launch_bounds__(kThreads)
    router_logits_dw_partial_kernel(const float* __restrict__ dlogits, const X* __restrict__ x,
                                    int64_t n_tokens, int dim, int n_experts,
                                    float* __restrict__ partial) {
  __shared__ float dl[kDwRows * kE];
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kDwRows;
  const int rows = static_cast<int>(min(static_cast<int64_t>(kDwRows), n_tokens - first));
  for (int i = threadIdx.x; i < rows * n_experts; i += blockDim.x)
    dl[i] = dlogits[first * n_experts + i];
  __syncthreads();
  for (int j = threadIdx.x; j < dim; j += blockDim.x) {
    float acc[kE] = {};
    for (int r = 0; r < rows; ++r) {
      const float xv = to_float(x[(first + r) * dim + j]);
#pragma unroll
      for (int e = 0; e < kE; ++e)
        if (e < n_experts) acc[e] += dl[r * n_experts + e] * xv;
    }
#pragma unroll
    for (int e = 0; e < kE; ++e)
      if (e < n_experts)
        partial[(static_cast<int64_t>(blockIdx.x) * n_experts + e) * dim + j] = acc[e];
  }
}

// dw[i] = sum over blocks b, in order, of partial[b, i] for the E·d elements i.
__global__ void __launch_bounds__(kThreads)
    router_logits_dw_total_kernel(const float* __restrict__ partial, int blocks, int64_t count,
                                  float* __restrict__ dw) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = 0.f;
    for (int b = 0; b < blocks; ++b) sum += partial[b * count + i];
    dw[i] = sum;
  }
}

// Calls f(std::integral_constant<int, kE>{}) with the smallest of 8, 16, 32 that holds E.
template <class F>
void with_expert_bound(int64_t n_experts, F&& f) {
  if (n_experts <= 8)
    f(std::integral_constant<int, 8>{});
  else if (n_experts <= 16)
    f(std::integral_constant<int, 16>{});
  else
    f(std::integral_constant<int, 32>{});
}

void check_fused(int64_t dim, int64_t n_experts, const char* op) {
  LATTE_CHECK(router_logits_fused(dim, n_experts))
      << op << ": " << n_experts << " experts x " << dim
      << " columns exceed the fused router kernels (at most " << kMaxFusedRouterExperts
      << " experts and " << kMaxFusedRouterWeightBytes << " bytes of weight)";
}

// Lets `kernel` stage `bytes` of weight in dynamic shared memory, then launches it.
template <typename Kernel, typename... Args>
void launch_staged(Kernel* kernel, int64_t n_tokens, int64_t bytes, cudaStream_t stream,
                   Args... args) {
  allow_shared_memory(kernel, bytes);
  kernel<<<static_cast<unsigned>(ceil_div(n_tokens, kRowsPerBlock)), kThreads,
           static_cast<size_t>(bytes), stream>>>(args...);
  LATTE_CUDA_CHECK_LAUNCH();
}

}  // namespace

bool router_logits_fused(int64_t dim, int64_t n_experts) {
  return n_experts >= 1 && n_experts <= kMaxFusedRouterExperts && dim >= 1 &&
         n_experts * dim * static_cast<int64_t>(sizeof(float)) <= kMaxFusedRouterWeightBytes;
}

template <typename X>
void router_logits_forward(const X* x, const float* w, int64_t n_tokens, int64_t dim,
                           int64_t n_experts, float* logits, cudaStream_t stream) {
  check_fused(dim, n_experts, "cuda router_logits_forward");
  if (n_tokens == 0) return;
  using D = DeviceType<X>;
  constexpr int kV = kPackWidth<D>;
  const bool packed = dim % kV == 0 && rows_vector_aligned<D>(dim, {x});
  const int64_t bytes = n_experts * dim * static_cast<int64_t>(sizeof(float));
  with_expert_bound(n_experts, [&](auto bound) {
    constexpr int kE = decltype(bound)::value;
    const auto launch = [&](auto kernel) {
      launch_staged(kernel, n_tokens, bytes, stream, device_ptr(x), w, n_tokens,
                    static_cast<int>(dim), static_cast<int>(n_experts), logits);
    };
    if (packed)
      launch(router_logits_kernel<D, kE, kV>);
    else
      launch(router_logits_kernel<D, kE, 1>);
  });
}

int64_t router_logits_backward_workspace(int64_t n_tokens, int64_t dim, int64_t n_experts) {
  return ceil_div(n_tokens, kDwRows) * n_experts * dim;
}

template <typename X>
void router_logits_backward(const float* dlogits, const X* x, const float* w, int64_t n_tokens,
                            int64_t dim, int64_t n_experts, X* dx, float* dw, float* workspace,
                            cudaStream_t stream) {
  check_fused(dim, n_experts, "cuda router_logits_backward");
  using D = DeviceType<X>;
  if (n_tokens == 0) {
    if (dw != nullptr)
      LATTE_CUDA_CHECK(cudaMemsetAsync(dw, 0, n_experts * dim * sizeof(float), stream));
    return;
  }
  with_expert_bound(n_experts, [&](auto bound) {
    constexpr int kE = decltype(bound)::value;
    if (dx != nullptr) {
      constexpr int kV = kPackWidth<D>;
      const bool packed = dim % kV == 0 && rows_vector_aligned<D>(dim, {dx});
      const int64_t bytes = n_experts * dim * static_cast<int64_t>(sizeof(float));
      const auto launch = [&](auto kernel) {
        launch_staged(kernel, n_tokens, bytes, stream, dlogits, w, n_tokens, static_cast<int>(dim),
                      static_cast<int>(n_experts), device_ptr(dx));
      };
      if (packed)
        launch(router_logits_dx_kernel<D, kE, kV>);
      else
        launch(router_logits_dx_kernel<D, kE, 1>);
    }
    if (dw != nullptr) {
      const int64_t blocks = ceil_div(n_tokens, kDwRows);
      router_logits_dw_partial_kernel<D, kE>
          <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
              dlogits, device_ptr(x), n_tokens, static_cast<int>(dim), static_cast<int>(n_experts),
              workspace);
      LATTE_CUDA_CHECK_LAUNCH();
      const int64_t count = n_experts * dim;
      router_logits_dw_total_kernel<<<grid_for(count, kThreads), kThreads, 0, stream>>>(
          workspace, static_cast<int>(blocks), count, dw);
      LATTE_CUDA_CHECK_LAUNCH();
    }
  });
}

template void router_logits_forward<float>(const float*, const float*, int64_t, int64_t, int64_t,
                                           float*, cudaStream_t);
template void router_logits_forward<latte::bf16>(const latte::bf16*, const float*, int64_t, int64_t,
                                                 int64_t, float*, cudaStream_t);
template void router_logits_backward<float>(const float*, const float*, const float*, int64_t,
                                            int64_t, int64_t, float*, float*, float*, cudaStream_t);
template void router_logits_backward<latte::bf16>(const float*, const latte::bf16*, const float*,
                                                  int64_t, int64_t, int64_t, latte::bf16*, float*,
                                                  float*, cudaStream_t);

}  // namespace latte::kernels::cuda

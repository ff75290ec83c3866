#include "kernels/cuda/moe_dispatch.cuh"

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kChunk = 256;  // assignments per chunk of the counting sort (a warp places one)
constexpr int kCountThreads = 256;
constexpr int kScanThreads = 1024;
constexpr int kRowThreads = 256;

// Views of the build_dispatch workspace.
struct DispatchWorkspace {
  int* chunk_counts;       // [chunks, E]
  int* chunk_base;         // [chunks, E]: rank of the chunk's first assignment of each expert
  int* chunk_invalid;      // [chunks]
  int64_t* kept_start;     // [E]
  int64_t* kept_count;     // [E]
  int64_t* dropped_start;  // [E]
};

int64_t align(int64_t bytes) {
  return (bytes + 255) / 256 * 256;
}

DispatchWorkspace carve(void* base, int64_t chunks, int64_t n_experts) {
  char* p = static_cast<char*>(base);
  DispatchWorkspace w;
  w.chunk_counts = reinterpret_cast<int*>(p);
  p += align(chunks * n_experts * sizeof(int));
  w.chunk_base = reinterpret_cast<int*>(p);
  p += align(chunks * n_experts * sizeof(int));
  w.chunk_invalid = reinterpret_cast<int*>(p);
  p += align(chunks * sizeof(int));
  w.kept_start = reinterpret_cast<int64_t*>(p);
  p += align(n_experts * sizeof(int64_t));
  w.kept_count = reinterpret_cast<int64_t*>(p);
  p += align(n_experts * sizeof(int64_t));
  w.dropped_start = reinterpret_cast<int64_t*>(p);
  return w;
}

__global__ void __launch_bounds__(kCountThreads)
    count_chunks_kernel(const int32_t* __restrict__ ids, int64_t n_assignments, int n_experts,
                        DispatchWorkspace w) {
  extern __shared__ int hist[];
  __shared__ int invalid;
  for (int e = threadIdx.x; e < n_experts; e += blockDim.x) hist[e] = 0;
  if (threadIdx.x == 0) invalid = 0;
  __syncthreads();
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kChunk;
  const int64_t end = min(n_assignments, begin + kChunk);
  for (int64_t a = begin + threadIdx.x; a < end; a += blockDim.x) {
    const int32_t e = ids[a];
    if (e >= 0 && e < n_experts)
      atomicAdd(&hist[e], 1);  // integer counts: the result does not depend on the order
    else
      atomicAdd(&invalid, 1);
  }
  __syncthreads();
  for (int e = threadIdx.x; e < n_experts; e += blockDim.x)
    w.chunk_counts[blockIdx.x * static_cast<int64_t>(n_experts) + e] = hist[e];
  if (threadIdx.x == 0) w.chunk_invalid[blockIdx.x] = invalid;
}

__global__ void __launch_bounds__(kScanThreads)
    scan_counts_kernel(int64_t chunks, int n_experts, int64_t capacity, DispatchWorkspace w,
                       int64_t* __restrict__ expert_offsets, int64_t* __restrict__ load,
                       int64_t* __restrict__ status) {
  // A warp per expert scans its chunk counts in order, 32 chunks per round (lanes load them
  // together; a shuffle scan ranks them): the chunk's starting rank and the routed count.
  const int lane = threadIdx.x % kWarp;
  for (int e = threadIdx.x / kWarp; e < n_experts; e += blockDim.x / kWarp) {
    int64_t routed = 0;
    for (int64_t c0 = 0; c0 < chunks; c0 += kWarp) {
      const int64_t c = c0 + lane;
      const int count = c < chunks ? w.chunk_counts[c * n_experts + e] : 0;
      int inclusive = count;
      for (int offset = 1; offset < kWarp; offset *= 2) {
        const int below = __shfl_up_sync(kFullMask, inclusive, offset);
        if (lane >= offset) inclusive += below;
      }
      if (c < chunks)
        w.chunk_base[c * n_experts + e] = static_cast<int>(routed + inclusive - count);
      routed += __shfl_sync(kFullMask, inclusive, kWarp - 1);
    }
    if (lane == 0) {
      load[e] = routed;
      w.kept_count[e] = capacity < 0 ? routed : min(routed, capacity);
      w.dropped_start[e] = routed;  // the routed count, turned into a start below
    }
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  int64_t kept_total = 0;
  for (int e = 0; e < n_experts; ++e) {
    expert_offsets[e] = kept_total;
    w.kept_start[e] = kept_total;
    kept_total += w.kept_count[e];
  }
  expert_offsets[n_experts] = kept_total;
  int64_t dropped_total = 0;
  for (int e = 0; e < n_experts; ++e) {
    const int64_t dropped = w.dropped_start[e] - w.kept_count[e];
    w.dropped_start[e] = kept_total + dropped_total;
    dropped_total += dropped;
  }
  int64_t invalid = 0;
  for (int64_t c = 0; c < chunks; ++c) invalid += w.chunk_invalid[c];
  status[0] = dropped_total;
  status[1] = invalid;
}

// One warp per chunk, rounds of 32 assignments in order.
__global__ void __launch_bounds__(kWarp)
    place_kernel(const int32_t* __restrict__ ids, int64_t n_assignments, int n_experts,
                 DispatchWorkspace w, int64_t* __restrict__ sorted_assignment,
                 int64_t* __restrict__ assignment_position) {
  extern __shared__ int running[];
  const int lane = threadIdx.x;
  for (int e = lane; e < n_experts; e += kWarp)
    running[e] = w.chunk_base[blockIdx.x * static_cast<int64_t>(n_experts) + e];
  __syncwarp();
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kChunk;
  const unsigned earlier_lanes = (1u << lane) - 1;
  for (int64_t round = begin; round < min(n_assignments, begin + kChunk); round += kWarp) {
    const int64_t a = round + lane;
    const bool present = a < n_assignments;
    const int32_t id = present ? ids[a] : -1;
    const int key = id >= 0 && id < n_experts ? id : -1;
    const unsigned peers = __match_any_sync(kFullMask, key);
    if (key >= 0) {
      const int64_t rank = running[key] + __popc(peers & earlier_lanes);
      if (rank < w.kept_count[key]) {
        const int64_t p = w.kept_start[key] + rank;
        sorted_assignment[p] = a;
        assignment_position[a] = p;
      } else {
        sorted_assignment[w.dropped_start[key] + rank - w.kept_count[key]] = a;
        assignment_position[a] = -1;
      }
    } else if (present) {
      assignment_position[a] = -1;
    }
    __syncwarp();  // every lane has read running[] for this round
    if (key >= 0 && lane == __ffs(peers) - 1) running[key] += __popc(peers);
    __syncwarp();
  }
}

template <typename T, int W>
__global__ void __launch_bounds__(kRowThreads)
    gather_rows_kernel(const T* __restrict__ x, const int64_t* __restrict__ sorted_assignment,
                       const int64_t* __restrict__ n_kept, int64_t top_k, int64_t dim,
                       T* __restrict__ x_sorted) {
  using P = Vec<T, W>;
  const int64_t p = blockIdx.x;
  if (p >= *n_kept) return;
  const P* src = reinterpret_cast<const P*>(x + (sorted_assignment[p] / top_k) * dim);
  P* dst = reinterpret_cast<P*>(x_sorted + p * dim);
  for (int64_t j = threadIdx.x; j < dim / W; j += blockDim.x) dst[j] = src[j];
}

// out[j] = Σ_k scale_k · rows_k[j] over one token's kept assignments, k in order (so every W
// gives the same sums); scale is weights[a] or 1.
template <typename T, int W>
__device__ void sum_assignments(T* __restrict__ out, const T* __restrict__ rows,
                                const float* __restrict__ weights,
                                const int64_t* __restrict__ assignment_position, int64_t t,
                                int64_t top_k, int64_t dim) {
  using P = Vec<T, W>;
  P* o = reinterpret_cast<P*>(out);
  for (int64_t j = threadIdx.x; j < dim / W; j += blockDim.x) {
    P v;
    float acc[W] = {};
    for (int64_t k = 0; k < top_k; ++k) {
      const int64_t a = t * top_k + k, p = assignment_position[a];
      if (p < 0) continue;
      const P r = reinterpret_cast<const P*>(rows + p * dim)[j];
      const float scale = weights ? weights[a] : 1.f;
      for (int w = 0; w < W; ++w) acc[w] += weights ? scale * to_float(r.v[w]) : to_float(r.v[w]);
    }
    for (int w = 0; w < W; ++w) v.v[w] = from_float<T>(acc[w]);
    o[j] = v;
  }
}

template <typename T, int W>
__global__ void __launch_bounds__(kRowThreads)
    gather_rows_backward_kernel(const T* __restrict__ dx_sorted,
                                const int64_t* __restrict__ assignment_position, int64_t top_k,
                                int64_t dim, T* __restrict__ dx) {
  const int64_t t = blockIdx.x;
  sum_assignments<T, W>(dx + t * dim, dx_sorted, nullptr, assignment_position, t, top_k, dim);
}

template <typename T, int W>
__global__ void __launch_bounds__(kRowThreads)
    combine_forward_kernel(const T* __restrict__ expert_out_sorted,
                           const float* __restrict__ weights,
                           const int64_t* __restrict__ assignment_position, int64_t top_k,
                           int64_t dim, T* __restrict__ y) {
  const int64_t t = blockIdx.x;
  sum_assignments<T, W>(y + t * dim, expert_out_sorted, weights, assignment_position, t, top_k,
                        dim);
}

// Block t (blockDim.x threads, a multiple of 32): for each kept assignment of token t in k order,
// d_out[p] = w * dy[t] and dweights[a] = the block's fixed-tree dot of dy[t] and out[p], rows in
// Packs of W; dweights[a] = 0 for a dropped one.
template <typename T, int W>
__global__ void __launch_bounds__(kRowThreads)
    combine_backward_kernel(const T* __restrict__ dy, const T* __restrict__ expert_out_sorted,
                            const float* __restrict__ weights,
                            const int64_t* __restrict__ assignment_position, int64_t top_k,
                            int64_t dim, T* __restrict__ d_expert_out_sorted,
                            float* __restrict__ dweights) {
  using P = Vec<T, W>;
  __shared__ float scratch[kWarp];
  const int64_t t = blockIdx.x;
  const P* g = reinterpret_cast<const P*>(dy + t * dim);
  for (int64_t k = 0; k < top_k; ++k) {
    const int64_t a = t * top_k + k, p = assignment_position[a];
    if (p < 0) {  // the same for the whole block
      if (threadIdx.x == 0) dweights[a] = 0.f;
      continue;
    }
    const float w = weights[a];
    const P* out = reinterpret_cast<const P*>(expert_out_sorted + p * dim);
    P* d_out = reinterpret_cast<P*>(d_expert_out_sorted + p * dim);
    float dot = 0.f;
    for (int64_t j = threadIdx.x; j < dim / W; j += blockDim.x) {
      const P gj = g[j], oj = out[j];
      P dj;
#pragma unroll
      for (int e = 0; e < W; ++e) {
        dj.v[e] = from_float<T>(w * to_float(gj.v[e]));
        dot += to_float(gj.v[e]) * to_float(oj.v[e]);
      }
      d_out[j] = dj;
    }
    dot = block_sum(dot, scratch);
    if (threadIdx.x == 0) dweights[a] = dot;
  }
}

void check_grid(int64_t rows, const char* op) {
  LATTE_CHECK(rows < (int64_t(1) << 31)) << op << ": " << rows << " rows exceed the grid limit";
}

}  // namespace

int64_t build_dispatch_workspace_bytes(int64_t n_assignments, int64_t n_experts) {
  const int64_t chunks = ceil_div(n_assignments, kChunk);
  return 2 * align(chunks * n_experts * sizeof(int)) + align(chunks * sizeof(int)) +
         3 * align(n_experts * sizeof(int64_t));
}

void build_dispatch(const int32_t* expert_ids, int64_t n_tokens, int64_t top_k, int64_t n_experts,
                    int64_t capacity, int64_t* expert_offsets, int64_t* load,
                    int64_t* sorted_assignment, int64_t* assignment_position, int64_t* status,
                    void* workspace, cudaStream_t stream) {
  LATTE_CHECK(n_experts >= 1 && n_experts <= kMaxDispatchExperts)
      << "cuda build_dispatch: n_experts " << n_experts << " is outside [1, " << kMaxDispatchExperts
      << "]";
  const int64_t n_assignments = n_tokens * top_k;
  check_grid(ceil_div(n_assignments, kChunk), "cuda build_dispatch");
  const int64_t chunks = ceil_div(n_assignments, kChunk);
  const int e = static_cast<int>(n_experts);
  const DispatchWorkspace w = carve(workspace, chunks, n_experts);
  const size_t hist_bytes = n_experts * sizeof(int);
  if (chunks > 0) {
    count_chunks_kernel<<<static_cast<unsigned>(chunks), kCountThreads, hist_bytes, stream>>>(
        expert_ids, n_assignments, e, w);
    LATTE_CUDA_CHECK_LAUNCH();
  }
  scan_counts_kernel<<<1, kScanThreads, 0, stream>>>(chunks, e, capacity, w, expert_offsets, load,
                                                     status);
  LATTE_CUDA_CHECK_LAUNCH();
  if (chunks > 0) {
    place_kernel<<<static_cast<unsigned>(chunks), kWarp, hist_bytes, stream>>>(
        expert_ids, n_assignments, e, w, sorted_assignment, assignment_position);
    LATTE_CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void gather_rows(const T* x, const int64_t* sorted_assignment, const int64_t* n_kept,
                 int64_t max_rows, int64_t top_k, int64_t dim, T* x_sorted, cudaStream_t stream) {
  if (max_rows == 0) return;
  check_grid(max_rows, "cuda gather_rows");
  const auto launch = [&](auto kernel) {
    kernel<<<static_cast<unsigned>(max_rows), kRowThreads, 0, stream>>>(
        device_ptr(x), sorted_assignment, n_kept, top_k, dim, device_ptr(x_sorted));
  };
  if (rows_vector_aligned<T>(dim, {x, x_sorted}))
    launch(gather_rows_kernel<DeviceType<T>, kPackWidth<T>>);
  else
    launch(gather_rows_kernel<DeviceType<T>, 1>);
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void gather_rows_backward(const T* dx_sorted, const int64_t* assignment_position, int64_t n_tokens,
                          int64_t top_k, int64_t dim, T* dx, cudaStream_t stream) {
  if (n_tokens == 0) return;
  check_grid(n_tokens, "cuda gather_rows_backward");
  const auto launch = [&](auto kernel) {
    kernel<<<static_cast<unsigned>(n_tokens), kRowThreads, 0, stream>>>(
        device_ptr(dx_sorted), assignment_position, top_k, dim, device_ptr(dx));
  };
  if (rows_vector_aligned<T>(dim, {dx_sorted, dx}))
    launch(gather_rows_backward_kernel<DeviceType<T>, kPackWidth<T>>);
  else
    launch(gather_rows_backward_kernel<DeviceType<T>, 1>);
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void combine_forward(const T* expert_out_sorted, const float* weights,
                     const int64_t* assignment_position, int64_t n_tokens, int64_t top_k,
                     int64_t dim, T* y, cudaStream_t stream) {
  if (n_tokens == 0) return;
  check_grid(n_tokens, "cuda combine_forward");
  const auto launch = [&](auto kernel) {
    kernel<<<static_cast<unsigned>(n_tokens), kRowThreads, 0, stream>>>(
        device_ptr(expert_out_sorted), weights, assignment_position, top_k, dim, device_ptr(y));
  };
  if (rows_vector_aligned<T>(dim, {expert_out_sorted, y}))
    launch(combine_forward_kernel<DeviceType<T>, kPackWidth<T>>);
  else
    launch(combine_forward_kernel<DeviceType<T>, 1>);
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void combine_backward(const T* dy, const T* expert_out_sorted, const float* weights,
                      const int64_t* assignment_position, int64_t n_tokens, int64_t top_k,
                      int64_t dim, T* d_expert_out_sorted, float* dweights, cudaStream_t stream) {
  if (n_tokens == 0) return;
  check_grid(n_tokens, "cuda combine_backward");
  const bool packed = rows_vector_aligned<T>(dim, {dy, expert_out_sorted, d_expert_out_sorted});
  // Threads: one per access of the row up to kRowThreads, so short rows leave no thread idle.
  const int64_t accesses = packed ? dim / kPackWidth<T> : dim;
  const auto threads = static_cast<unsigned>(
      std::clamp<int64_t>(ceil_div(accesses, kWarp) * kWarp, kWarp, kRowThreads));
  const auto launch = [&](auto kernel) {
    kernel<<<static_cast<unsigned>(n_tokens), threads, 0, stream>>>(
        device_ptr(dy), device_ptr(expert_out_sorted), weights, assignment_position, top_k, dim,
        device_ptr(d_expert_out_sorted), dweights);
  };
  if (packed)
    launch(combine_backward_kernel<DeviceType<T>, kPackWidth<T>>);
  else
    launch(combine_backward_kernel<DeviceType<T>, 1>);
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_MOE_DISPATCH(T)                                                                    \
  template void gather_rows<T>(const T*, const int64_t*, const int64_t*, int64_t, int64_t,       \
                               int64_t, T*, cudaStream_t);                                       \
  template void gather_rows_backward<T>(const T*, const int64_t*, int64_t, int64_t, int64_t, T*, \
                                        cudaStream_t);                                           \
  template void combine_forward<T>(const T*, const float*, const int64_t*, int64_t, int64_t,     \
                                   int64_t, T*, cudaStream_t);                                   \
  template void combine_backward<T>(const T*, const T*, const float*, const int64_t*, int64_t,   \
                                    int64_t, int64_t, T*, float*, cudaStream_t);
LATTE_MOE_DISPATCH(float)
LATTE_MOE_DISPATCH(latte::bf16)
#undef LATTE_MOE_DISPATCH

}  // namespace latte::kernels::cuda

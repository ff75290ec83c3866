#include "kernels/cuda/elementwise.cuh"

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/elementwise_map.cuh"
#include "kernels/cuda/merged_walk.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;
using cpu::BinaryOp;

constexpr int kThreads = 256;
constexpr int64_t kSumChunk = 4096;
// sum_to: outputs per block (threadIdx.x), thread rows per output (threadIdx.y), the fewest
// reduced elements per slice and the number of blocks worth splitting the reduction for.
constexpr int kSumToCols = 32;
constexpr int kSumToRows = 8;
constexpr int kSumToThreads = kSumToCols * kSumToRows;
constexpr int64_t kMinSlice = 256;
constexpr int64_t kTargetBlocks = 1024;

__device__ __forceinline__ double to_double(double x) {
  return x;
}
template <typename T>
__device__ __forceinline__ double to_double(T x) {
  return static_cast<double>(to_float(x));
}

template <typename T>
__device__ __forceinline__ T from_double(double x);
template <>
__device__ __forceinline__ double from_double<double>(double x) {
  return x;
}
template <>
__device__ __forceinline__ float from_double<float>(double x) {
  return static_cast<float>(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_double<__nv_bfloat16>(double x) {
  return __double2bfloat16(x);
}

__device__ __forceinline__ int64_t grid_start() {
  return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_step() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// ---- binary ops ----

template <BinaryOp Op>
__device__ __forceinline__ float apply(float a, float b) {
  if constexpr (Op == BinaryOp::kAdd)
    return a + b;
  else if constexpr (Op == BinaryOp::kSub)
    return a - b;
  else
    return a * b;
}

// The op on one element: x = {a, b}, y = {out}.
template <typename T, BinaryOp Op>
struct Binary {
  __device__ void operator()(const T* x, T* y) const {
    y[0] = from_float<T>(apply<Op>(to_float(x[0]), to_float(x[1])));
  }
};

// The broadcasting (or strided) case: element i of out from the merged walk's offsets.
template <typename T, BinaryOp Op>
__global__ void __launch_bounds__(kThreads)
    binary_kernel(const MergedDims g, int64_t n, const T* __restrict__ a, const T* __restrict__ b,
                  T* __restrict__ out) {
  for (int64_t i = grid_start(); i < n; i += grid_step()) {
    int64_t oa, ob;
    merged_offsets(g, i, oa, ob);
    const T x[2] = {a[oa], b[ob]};
    Binary<T, Op>{}(x, out + i);
  }
}

// Runs op over n elements of its operands (elementwise_map.cuh).
template <typename T, int I, typename Op>
void launch_map(int64_t n, const Operands<T, I, T, 1>& p, Op op, cudaStream_t stream) {
  if (n == 0) return;
  const MapLaunch l = plan_map(n, p);
  map_kernel<<<l.blocks, kMapThreads, 0, stream>>>(n, l.vectorized, p, op);
  LATTE_CUDA_CHECK_LAUNCH();
}

// Same-shape operands (the walk is dense) take the elementwise map.
template <typename T, BinaryOp Op>
void launch_binary(const MergedDims& g, int64_t n, const T* a, const T* b, T* out,
                   cudaStream_t stream) {
  if (g.dense()) return launch_map(n, Operands<T, 2, T, 1>{{a, b}, {out}}, Binary<T, Op>{}, stream);
  binary_kernel<T, Op><<<grid_for(n, kThreads), kThreads, 0, stream>>>(g, n, a, b, out);
  LATTE_CUDA_CHECK_LAUNCH();
}

// ---- scale, add_inplace ----

// x = {x}, y = {out}.
template <typename T>
struct Scale {
  float s;
  __device__ void operator()(const T* x, T* y) const { y[0] = from_float<T>(s * to_float(x[0])); }
};

// ---- sum_all ----

// out[blockIdx.x] = the sum of chunks blockIdx.x, blockIdx.x + gridDim.x, ... of `chunk` elements
// of x[0, n), in double.
template <typename In, typename Out>
__global__ void __launch_bounds__(kThreads)
    sum_chunks_kernel(const In* __restrict__ x, int64_t n, int64_t chunk, Out* __restrict__ out) {
  __shared__ double scratch[kWarp];
  double sum = 0;
  const int64_t chunks = (n + chunk - 1) / chunk;
  for (int64_t c = blockIdx.x; c < chunks; c += gridDim.x) {
    const int64_t end = min(n, (c + 1) * chunk);
    for (int64_t i = c * chunk + threadIdx.x; i < end; i += blockDim.x) sum += to_double(x[i]);
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = from_double<Out>(sum);
}

template <typename D>
void launch_sum_all(const D* x, int64_t n, double* workspace, D* out, cudaStream_t stream) {
  const int64_t blocks = std::min<int64_t>(ceil_div(n, kSumChunk), kSumPartials);
  if (blocks <= 1) {
    sum_chunks_kernel<D, D><<<1, kThreads, 0, stream>>>(x, n, std::max<int64_t>(n, 1), out);
    LATTE_CUDA_CHECK_LAUNCH();
    return;
  }
  sum_chunks_kernel<D, double>
      <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(x, n, kSumChunk, workspace);
  LATTE_CUDA_CHECK_LAUNCH();
  sum_chunks_kernel<double, D><<<1, kThreads, 0, stream>>>(workspace, blocks, blocks, out);
  LATTE_CUDA_CHECK_LAUNCH();
}

// ---- sum_to ----

// The kept dimensions (walked by x and out together) and the reduced ones (walked by x alone: both
// operands of that walk are x), each merged like the binary ops' (merged_dims.h), and how the
// reduction is sliced.
struct SumToPlan {
  MergedDims kept, reduced;
  int64_t outputs = 1, reduced_count = 1;  // elements of each walk
  int64_t splits = 1, slice = 0;           // slices of the reduced range, elements per slice
};

int64_t elements(const MergedDims& g) {
  int64_t n = 1;
  for (int d = 0; d < g.rank; ++d) n *= g.shape[d];
  return n;
}

SumToPlan plan_sum_to(const int64_t* shape, int rank, const int64_t* out_strides) {
  int64_t x_stride[kMaxElementwiseRank];  // x is contiguous
  int64_t contiguous = 1;
  for (int d = rank - 1; d >= 0; --d) {
    x_stride[d] = contiguous;
    contiguous *= shape[d];
  }
  int64_t kept_shape[kMaxElementwiseRank], kept_x[kMaxElementwiseRank],
      kept_out[kMaxElementwiseRank], reduced_shape[kMaxElementwiseRank],
      reduced_x[kMaxElementwiseRank];
  int kept_rank = 0, reduced_rank = 0;
  for (int d = 0; d < rank; ++d) {
    if (out_strides[d] != 0) {
      kept_shape[kept_rank] = shape[d];
      kept_x[kept_rank] = x_stride[d];
      kept_out[kept_rank++] = out_strides[d];
    } else {
      reduced_shape[reduced_rank] = shape[d];
      reduced_x[reduced_rank++] = x_stride[d];
    }
  }
  SumToPlan p;
  p.kept = merge_dims(kept_shape, kept_rank, kept_x, kept_out);
  p.reduced = merge_dims(reduced_shape, reduced_rank, reduced_x, reduced_x);
  p.outputs = elements(p.kept);
  p.reduced_count = elements(p.reduced);
  if (p.reduced_count > 0) {
    const int64_t column_blocks = ceil_div(p.outputs, kSumToCols);
    const int64_t wanted = std::max<int64_t>(1, ceil_div(kTargetBlocks, column_blocks));
    p.splits = std::max<int64_t>(1, std::min(ceil_div(p.reduced_count, kMinSlice), wanted));
    p.slice = ceil_div(p.reduced_count, p.splits);
    p.splits = ceil_div(p.reduced_count, p.slice);  // no empty slice
  }
  return p;
}

// Block (kSumToCols, kSumToRows): outputs blockIdx.x * kSumToCols + threadIdx.x, reduced slice
// blockIdx.y. One slice: the sum goes to out; several: to partial[slice * outputs + o].
template <typename T>
__global__ void __launch_bounds__(kSumToThreads)
    sum_to_kernel(const T* __restrict__ x, const SumToPlan p, T* __restrict__ out,
                  double* __restrict__ partial) {
  __shared__ double rows[kSumToRows][kSumToCols];
  const int64_t o = blockIdx.x * static_cast<int64_t>(kSumToCols) + threadIdx.x;
  double sum = 0;
  int64_t x_base = 0, out_off = 0;
  if (o < p.outputs) {
    merged_offsets(p.kept, o, x_base, out_off);
    const int64_t begin = blockIdx.y * p.slice, end = min(p.reduced_count, begin + p.slice);
    for (int64_t r = begin + threadIdx.y; r < end; r += kSumToRows) {
      int64_t x_off, unused;
      merged_offsets(p.reduced, r, x_off, unused);
      sum += to_double(x[x_base + x_off]);
    }
  }
  rows[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || o >= p.outputs) return;
  double total = 0;
  for (int y = 0; y < kSumToRows; ++y) total += rows[y][threadIdx.x];
  if (p.splits == 1)
    out[out_off] = from_double<T>(total);
  else
    partial[blockIdx.y * p.outputs + o] = total;
}

// out[o] = the sum of partial[s * outputs + o] over the slices s, in order.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    sum_slices_kernel(const double* __restrict__ partial, const SumToPlan p, T* __restrict__ out) {
  for (int64_t o = grid_start(); o < p.outputs; o += grid_step()) {
    double total = 0;
    for (int64_t s = 0; s < p.splits; ++s) total += partial[s * p.outputs + o];
    int64_t x_off, out_off;
    merged_offsets(p.kept, o, x_off, out_off);
    out[out_off] = from_double<T>(total);
  }
}

bool any_zero(const int64_t* shape, int rank) {
  return std::any_of(shape, shape + rank, [](int64_t s) { return s == 0; });
}

}  // namespace

template <typename T>
void binary_op(BinaryOp op, const int64_t* shape, int rank, const T* a, const int64_t* a_strides,
               const T* b, const int64_t* b_strides, T* out, cudaStream_t stream) {
  if (any_zero(shape, rank)) return;
  const MergedDims g = merge_dims(shape, rank, a_strides, b_strides);
  const int64_t n = elements(g);
  using D = DeviceType<T>;
  const D *da = device_ptr(a), *db = device_ptr(b);
  D* dout = device_ptr(out);
  switch (op) {
    case BinaryOp::kAdd:
      return launch_binary<D, BinaryOp::kAdd>(g, n, da, db, dout, stream);
    case BinaryOp::kSub:
      return launch_binary<D, BinaryOp::kSub>(g, n, da, db, dout, stream);
    case BinaryOp::kMul:
      return launch_binary<D, BinaryOp::kMul>(g, n, da, db, dout, stream);
  }
}

template <typename T>
void add_inplace(T* dst, const T* src, int64_t n, cudaStream_t stream) {
  using D = DeviceType<T>;
  launch_map(n, Operands<D, 2, D, 1>{{device_ptr(dst), device_ptr(src)}, {device_ptr(dst)}},
             Binary<D, BinaryOp::kAdd>{}, stream);
}

template <typename T>
void scale(const T* x, T* out, int64_t n, float s, cudaStream_t stream) {
  using D = DeviceType<T>;
  launch_map(n, Operands<D, 1, D, 1>{{device_ptr(x)}, {device_ptr(out)}}, Scale<D>{s}, stream);
}

template <typename T>
void sum_all(const T* x, int64_t n, double* workspace, T* out, cudaStream_t stream) {
  launch_sum_all(device_ptr(x), n, workspace, device_ptr(out), stream);
}

int64_t sum_to_workspace(const int64_t* shape, int rank, const int64_t* out_strides,
                         int64_t out_numel) {
  if (out_numel == 0) return 0;
  const SumToPlan p = plan_sum_to(shape, rank, out_strides);
  if (p.outputs == 1) return kSumPartials;
  return p.splits > 1 ? p.splits * p.outputs : 0;
}

template <typename T>
void sum_to(const T* x, const int64_t* shape, int rank, T* out, const int64_t* out_strides,
            int64_t out_numel, double* workspace, cudaStream_t stream) {
  if (out_numel == 0) return;
  const SumToPlan p = plan_sum_to(shape, rank, out_strides);
  using D = DeviceType<T>;
  if (p.outputs == 1) {  // one output: the sum of everything
    launch_sum_all(device_ptr(x), p.reduced_count, workspace, device_ptr(out), stream);
    return;
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(p.outputs, kSumToCols)),
                  static_cast<unsigned>(p.splits));
  sum_to_kernel<D><<<grid, dim3(kSumToCols, kSumToRows), 0, stream>>>(device_ptr(x), p,
                                                                      device_ptr(out), workspace);
  LATTE_CUDA_CHECK_LAUNCH();
  if (p.splits == 1) return;
  sum_slices_kernel<D>
      <<<grid_for(p.outputs, kThreads), kThreads, 0, stream>>>(workspace, p, device_ptr(out));
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_ELEMENTWISE(T)                                                                    \
  template void binary_op<T>(BinaryOp, const int64_t*, int, const T*, const int64_t*, const T*, \
                             const int64_t*, T*, cudaStream_t);                                 \
  template void add_inplace<T>(T*, const T*, int64_t, cudaStream_t);                            \
  template void scale<T>(const T*, T*, int64_t, float, cudaStream_t);                           \
  template void sum_all<T>(const T*, int64_t, double*, T*, cudaStream_t);                       \
  template void sum_to<T>(const T*, const int64_t*, int, T*, const int64_t*, int64_t, double*,  \
                          cudaStream_t);
LATTE_ELEMENTWISE(float)
LATTE_ELEMENTWISE(latte::bf16)
#undef LATTE_ELEMENTWISE

}  // namespace latte::kernels::cuda

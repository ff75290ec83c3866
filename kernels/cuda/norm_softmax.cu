#include "kernels/cuda/norm_softmax.cuh"

#include <initializer_list>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kRowThreads = 256;
// Packed rows: a warp per row holding up to kMaxVecs packs per lane, or for longer rows a block of
// up to kMaxRowThreads threads per row.
constexpr int kMaxVecs = 4, kMaxRowThreads = 512;
// dweight partial sums: blocks of kSumLanes column packs x kSumGroups row groups over chunks of
// kChunkRows rows.
constexpr int kSumLanes = 32, kSumGroups = 8, kChunkRows = 128;

// The sum over the threads of a row: the warp when a warp holds the row, else the block (one row
// per block). Fixed trees, so the same on every run.
__device__ __forceinline__ float row_sum(float v, float* scratch) {
  return blockDim.x == kWarp ? warp_sum(v) : block_sum(v, scratch);
}

// Calls f(v, j) for each pack j of its row that the thread holds, v = its slot in [0, kVecs): packs
// threadIdx.x, threadIdx.x + blockDim.x, ... below `packs`.
template <int kVecs, typename F>
__device__ __forceinline__ void for_own_packs(int packs, F f) {
#pragma unroll
  for (int v = 0; v < kVecs; ++v) {
    const int j = threadIdx.x + v * blockDim.x;
    if (j < packs) f(v, j);
  }
}

// Packed path: rows of `cols` elements in Packs of W (16 bytes), row r = blockIdx.x * blockDim.y +
// threadIdx.y, its pack j held by thread j % blockDim.x as its (j / blockDim.x)-th of kVecs, so x
// is read from memory once and kept in registers between the reduction and the write.
template <typename T, typename Wt, int kVecs>
__global__ void __launch_bounds__(kMaxRowThreads)
    rms_norm_forward_packed_kernel(const T* __restrict__ x, int64_t x_row_stride,
                                   const Wt* __restrict__ w, T* __restrict__ y,
                                   float* __restrict__ rstd, int64_t rows, int64_t cols,
                                   float eps) {
  constexpr int W = kPackWidth<T>;
  using P = Vec<T, W>;
  __shared__ float scratch[kWarp];
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool live = r < rows;  // false only for whole warps of the last block
  const int packs = static_cast<int>(cols / W);
  P xv[kVecs];
  float ss = 0.f;
  if (live)
    for_own_packs<kVecs>(packs, [&](int v, int j) {
      xv[v] = reinterpret_cast<const P*>(x + r * x_row_stride)[j];
#pragma unroll
      for (int e = 0; e < W; ++e) ss += to_float(xv[v].v[e]) * to_float(xv[v].v[e]);
    });
  ss = row_sum(ss, scratch);
  if (!live) return;
  const float inv = 1.f / sqrtf(ss / static_cast<float>(cols) + eps);
  if (threadIdx.x == 0) rstd[r] = inv;
  for_own_packs<kVecs>(packs, [&](int v, int j) {
    const Vec<Wt, W> wv = load_vec<W>(w + j * W);
    P out;
#pragma unroll
    for (int e = 0; e < W; ++e)
      out.v[e] = from_float<T>(to_float(wv.v[e]) * (to_float(xv[v].v[e]) * inv));
    reinterpret_cast<P*>(y + r * cols)[j] = out;
  });
}

// dx on the packed path, laid out like the forward: x and dy stay in registers, w is read twice.
template <typename T, typename Wt, int kVecs>
__global__ void __launch_bounds__(kMaxRowThreads)
    rms_norm_dx_packed_kernel(const T* __restrict__ x, int64_t x_row_stride,
                              const Wt* __restrict__ w, const float* __restrict__ rstd,
                              const T* __restrict__ dy, T* __restrict__ dx, int64_t rows,
                              int64_t cols) {
  constexpr int W = kPackWidth<T>;
  using P = Vec<T, W>;
  __shared__ float scratch[kWarp];
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool live = r < rows;
  const int packs = static_cast<int>(cols / W);
  P xv[kVecs], dyv[kVecs];
  float dot = 0.f;
  if (live)
    for_own_packs<kVecs>(packs, [&](int v, int j) {
      xv[v] = reinterpret_cast<const P*>(x + r * x_row_stride)[j];
      dyv[v] = reinterpret_cast<const P*>(dy + r * cols)[j];
      const Vec<Wt, W> wv = load_vec<W>(w + j * W);
#pragma unroll
      for (int e = 0; e < W; ++e)
        dot += to_float(wv.v[e]) * to_float(dyv[v].v[e]) * to_float(xv[v].v[e]);
    });
  dot = row_sum(dot, scratch);
  if (!live) return;
  const float inv = rstd[r];
  const float c = dot / static_cast<float>(cols) * inv * inv;
  for_own_packs<kVecs>(packs, [&](int v, int j) {
    const Vec<Wt, W> wv = load_vec<W>(w + j * W);
    P out;
#pragma unroll
    for (int e = 0; e < W; ++e)
      out.v[e] = from_float<T>(
          inv * (to_float(wv.v[e]) * to_float(dyv[v].v[e]) - to_float(xv[v].v[e]) * c));
    reinterpret_cast<P*>(dx + r * cols)[j] = out;
  });
}

// General path (any cols, rows at any alignment): one block per row, two passes over the row.
template <typename T, typename Wt>
__global__ void rms_norm_forward_kernel(const T* __restrict__ x, int64_t x_row_stride,
                                        const Wt* __restrict__ w, T* __restrict__ y,
                                        float* __restrict__ rstd, int64_t cols, float eps) {
  __shared__ float scratch[kWarp];
  const T* xr = x + blockIdx.x * x_row_stride;
  T* yr = y + blockIdx.x * cols;
  float ss = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float v = to_float(xr[j]);
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float inv = 1.f / sqrtf(ss / static_cast<float>(cols) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = inv;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    yr[j] = from_float<T>(to_float(w[j]) * (to_float(xr[j]) * inv));
}

template <typename T, typename Wt>
__global__ void rms_norm_dx_kernel(const T* __restrict__ x, int64_t x_row_stride,
                                   const Wt* __restrict__ w, const float* __restrict__ rstd,
                                   const T* __restrict__ dy, T* __restrict__ dx, int64_t cols) {
  __shared__ float scratch[kWarp];
  const T* xr = x + blockIdx.x * x_row_stride;
  const int64_t off = blockIdx.x * cols;
  const float inv = rstd[blockIdx.x];
  float dot = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    dot += to_float(w[j]) * to_float(dy[off + j]) * to_float(xr[j]);
  dot = block_sum(dot, scratch);
  const float c = dot / static_cast<float>(cols) * inv * inv;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    dx[off + j] =
        from_float<T>(inv * (to_float(w[j]) * to_float(dy[off + j]) - to_float(xr[j]) * c));
}

// Column sums over the rows [begin, end) by a block of (kSumLanes, kSumGroups) threads: thread
// (lane, g) adds rows begin + g, begin + g + kSumGroups, ... in order (add_row(r, sums) adds row
// r's W columns), then the kSumGroups sums of each column are added in g order. Returns true in
// the threads of group 0, which hold the totals.
template <int W, typename AddRow>
__device__ bool sum_rows(AddRow add_row, int64_t begin, int64_t end, bool in_range,
                         float (&sums)[W], float (*partial)[kSumLanes][W]) {
#pragma unroll
  for (int e = 0; e < W; ++e) sums[e] = 0.f;
  if (in_range) {
#pragma unroll 4
    for (int64_t r = begin + threadIdx.y; r < end; r += kSumGroups) add_row(r, sums);
  }
#pragma unroll
  for (int e = 0; e < W; ++e) partial[threadIdx.y][threadIdx.x][e] = sums[e];
  __syncthreads();
  if (threadIdx.y != 0) return false;
#pragma unroll
  for (int e = 0; e < W; ++e) {
    float total = 0.f;
    for (int g = 0; g < kSumGroups; ++g) total += partial[g][threadIdx.x][e];
    sums[e] = total;
  }
  return true;
}

// dweight pass 1: block (chunk = blockIdx.x, column tile = blockIdx.y) writes partials[chunk, j] =
// the sum of dy[r, j] * x[r, j] * rstd[r] over the chunk's kChunkRows rows, W columns per thread.
template <typename T, int W>
__global__ void __launch_bounds__(kSumLanes* kSumGroups)
    rms_norm_dweight_partial_kernel(const T* __restrict__ x, int64_t x_row_stride,
                                    const float* __restrict__ rstd, const T* __restrict__ dy,
                                    float* __restrict__ partials, int64_t rows, int64_t cols) {
  using P = Vec<T, W>;
  __shared__ float partial[kSumGroups][kSumLanes][W];
  const int64_t c = (static_cast<int64_t>(blockIdx.y) * kSumLanes + threadIdx.x) * W;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kChunkRows;
  const auto add_row = [&](int64_t r, float(&sums)[W]) {
    const P xv = *reinterpret_cast<const P*>(x + r * x_row_stride + c);
    const P dyv = *reinterpret_cast<const P*>(dy + r * cols + c);
    const float s = rstd[r];
#pragma unroll
    for (int e = 0; e < W; ++e) sums[e] += to_float(dyv.v[e]) * to_float(xv.v[e]) * s;
  };
  float sums[W];
  if (sum_rows<W>(add_row, begin, min(rows, begin + kChunkRows), c < cols, sums, partial) &&
      c < cols) {
#pragma unroll
    for (int e = 0; e < W; ++e) partials[blockIdx.x * cols + c + e] = sums[e];
  }
}

// dweight pass 2: dweight[j] = the sum of partials[chunk, j] over the chunks, in the same fixed
// order (block = 32 columns), stored in the weight's dtype.
template <typename Wt>
__global__ void __launch_bounds__(kSumLanes* kSumGroups)
    rms_norm_dweight_total_kernel(const float* __restrict__ partials, int64_t chunks, int64_t cols,
                                  Wt* __restrict__ dweight) {
  __shared__ float partial[kSumGroups][kSumLanes][1];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kSumLanes + threadIdx.x;
  const auto add_row = [&](int64_t r, float(&sums)[1]) { sums[0] += partials[r * cols + c]; };
  float sums[1];
  if (sum_rows<1>(add_row, 0, chunks, c < cols, sums, partial) && c < cols)
    dweight[c] = from_float<Wt>(sums[0]);
}

template <typename T>
__global__ void softmax_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t cols) {
  __shared__ float scratch[kWarp];
  const int64_t off = blockIdx.x * cols;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, to_float(x[off + j]));
  mx = block_max(mx, scratch);
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) sum += expf(to_float(x[off + j]) - mx);
  sum = block_sum(sum, scratch);
  const float inv = 1.f / sum;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    y[off + j] = from_float<T>(expf(to_float(x[off + j]) - mx) * inv);
}

template <typename T>
__global__ void softmax_backward_kernel(const T* __restrict__ y, const T* __restrict__ dy,
                                        T* __restrict__ dx, int64_t cols) {
  __shared__ float scratch[kWarp];
  const int64_t off = blockIdx.x * cols;
  float dot = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    dot += to_float(dy[off + j]) * to_float(y[off + j]);
  dot = block_sum(dot, scratch);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    dx[off + j] = from_float<T>(to_float(y[off + j]) * (to_float(dy[off + j]) - dot));
}

void check_rows(int64_t rows, const char* op) {
  LATTE_CHECK(rows < (int64_t(1) << 31)) << op << ": " << rows << " rows exceed the grid limit";
}

// The packed path's launch: threads per row (blockDim.x), rows per block (blockDim.y) and packs
// per thread. Rows of up to kWarp * kMaxVecs packs take a warp each, longer ones a block each.
struct PackedShape {
  int threads, rows_per_block, vecs;
};

// The packed shape for these rows, or none (threads == 0) when they take the general path: cols
// not a multiple of the pack, a row start or operand not 16-byte aligned, or rows too long to
// keep in registers.
template <typename T>
PackedShape packed_shape(int64_t cols, int64_t x_row_stride,
                         std::initializer_list<const void*> bases) {
  constexpr int W = kPackWidth<T>;
  const int64_t packs = cols / W;
  if (cols % W != 0 || !rows_vector_aligned<T>(x_row_stride, bases) ||
      packs > int64_t(kMaxRowThreads) * kMaxVecs)
    return {0, 0, 0};
  if (packs > kWarp * kMaxVecs)
    return {static_cast<int>(ceil_div(ceil_div(packs, kMaxVecs), kWarp) * kWarp), 1, kMaxVecs};
  int vecs = 1;
  while (vecs * kWarp < packs) vecs *= 2;
  return {kWarp, kRowThreads / kWarp, vecs};
}

// Calls launch(std::integral_constant<int, V>) for V = vecs, one of 1, 2, kMaxVecs.
template <typename Launch>
void with_vecs(int vecs, Launch launch) {
  static_assert(kMaxVecs == 4);
  switch (vecs) {
    case 1:
      return launch(std::integral_constant<int, 1>{});
    case 2:
      return launch(std::integral_constant<int, 2>{});
    default:
      return launch(std::integral_constant<int, kMaxVecs>{});
  }
}

}  // namespace

template <typename T, typename Wt>
void rms_norm_forward(const T* x, int64_t x_row_stride, const Wt* weight, T* y, float* rstd,
                      int64_t rows, int64_t cols, double eps, cudaStream_t stream) {
  if (rows == 0) return;
  check_rows(rows, "cuda rms_norm_forward");
  const PackedShape shape = packed_shape<T>(cols, x_row_stride, {x, weight, y});
  if (shape.threads == 0) {
    rms_norm_forward_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
        device_ptr(x), x_row_stride, device_ptr(weight), device_ptr(y), rstd, cols,
        static_cast<float>(eps));
  } else {
    with_vecs(shape.vecs, [&](auto vecs) {
      rms_norm_forward_packed_kernel<DeviceType<T>, DeviceType<Wt>, decltype(vecs)::value>
          <<<static_cast<unsigned>(ceil_div(rows, shape.rows_per_block)),
             dim3(shape.threads, shape.rows_per_block), 0, stream>>>(
              device_ptr(x), x_row_stride, device_ptr(weight), device_ptr(y), rstd, rows, cols,
              static_cast<float>(eps));
    });
  }
  LATTE_CUDA_CHECK_LAUNCH();
}

int64_t rms_norm_backward_workspace_bytes(int64_t rows, int64_t cols) {
  return ceil_div(rows, kChunkRows) * cols * static_cast<int64_t>(sizeof(float));
}

template <typename T, typename Wt>
void rms_norm_backward(const T* x, int64_t x_row_stride, const Wt* weight, const float* rstd,
                       const T* dy, T* dx, Wt* dweight, int64_t rows, int64_t cols, void* workspace,
                       cudaStream_t stream) {
  check_rows(rows, "cuda rms_norm_backward");
  if (cols == 0) return;
  const PackedShape shape = packed_shape<T>(cols, x_row_stride, {x, weight, dy, dx});
  if (rows > 0 && shape.threads == 0) {
    rms_norm_dx_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
        device_ptr(x), x_row_stride, device_ptr(weight), rstd, device_ptr(dy), device_ptr(dx),
        cols);
    LATTE_CUDA_CHECK_LAUNCH();
  } else if (rows > 0) {
    with_vecs(shape.vecs, [&](auto vecs) {
      rms_norm_dx_packed_kernel<DeviceType<T>, DeviceType<Wt>, decltype(vecs)::value>
          <<<static_cast<unsigned>(ceil_div(rows, shape.rows_per_block)),
             dim3(shape.threads, shape.rows_per_block), 0, stream>>>(
              device_ptr(x), x_row_stride, device_ptr(weight), rstd, device_ptr(dy), device_ptr(dx),
              rows, cols);
    });
    LATTE_CUDA_CHECK_LAUNCH();
  }
  const int64_t chunks = ceil_div(rows, kChunkRows);
  auto* partials = static_cast<float*>(workspace);
  const bool packed =
      rows_vector_aligned<T>(x_row_stride, {x}) && rows_vector_aligned<T>(cols, {dy});
  const int64_t tile = kSumLanes * (packed ? kPackWidth<T> : 1);
  LATTE_CHECK(ceil_div(cols, tile) <= 65535)
      << "cuda rms_norm_backward: " << cols << " columns exceed 65535 tiles of " << tile;
  if (chunks > 0) {
    const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(ceil_div(cols, tile)));
    const dim3 block(kSumLanes, kSumGroups);
    if (packed)
      rms_norm_dweight_partial_kernel<DeviceType<T>, kPackWidth<T>><<<grid, block, 0, stream>>>(
          device_ptr(x), x_row_stride, rstd, device_ptr(dy), partials, rows, cols);
    else
      rms_norm_dweight_partial_kernel<DeviceType<T>, 1><<<grid, block, 0, stream>>>(
          device_ptr(x), x_row_stride, rstd, device_ptr(dy), partials, rows, cols);
    LATTE_CUDA_CHECK_LAUNCH();
  }
  rms_norm_dweight_total_kernel<<<static_cast<unsigned>(ceil_div(cols, kSumLanes)),
                                  dim3(kSumLanes, kSumGroups), 0, stream>>>(partials, chunks, cols,
                                                                            device_ptr(dweight));
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows == 0) return;
  check_rows(rows, "cuda softmax_forward");
  softmax_forward_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
      device_ptr(x), device_ptr(y), cols);
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols,
                      cudaStream_t stream) {
  if (rows == 0) return;
  check_rows(rows, "cuda softmax_backward");
  softmax_backward_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
      device_ptr(y), device_ptr(dy), device_ptr(dx), cols);
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_RMS_NORM(T, W)                                                                      \
  template void rms_norm_forward<T, W>(const T*, int64_t, const W*, T*, float*, int64_t, int64_t, \
                                       double, cudaStream_t);                                     \
  template void rms_norm_backward<T, W>(const T*, int64_t, const W*, const float*, const T*, T*,  \
                                        W*, int64_t, int64_t, void*, cudaStream_t);
LATTE_RMS_NORM(float, float)
LATTE_RMS_NORM(latte::bf16, latte::bf16)
LATTE_RMS_NORM(latte::bf16, float)
#undef LATTE_RMS_NORM

#define LATTE_SOFTMAX(T)                                                          \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t, cudaStream_t); \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t, cudaStream_t);
LATTE_SOFTMAX(float)
LATTE_SOFTMAX(latte::bf16)
#undef LATTE_SOFTMAX

}  // namespace latte::kernels::cuda
